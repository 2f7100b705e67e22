//! Squared Euclidean distances in f32, summed in a fixed lane order so the
//! AVX2 and portable paths agree to the bit, and the sorted neighbour lists
//! they fill.

use ndarray::ArrayView2;
use rayon::prelude::*;

use crate::memory::huge_vec;

/// Row-major f32 copy of the feature matrix, written on all threads (its
/// first touch is most of its cost: see [`huge_vec`]).
pub fn to_f32(x: ArrayView2<f64>) -> Vec<f32> {
    const ROWS: usize = 4096;
    let (n, d) = x.dim();
    if d == 0 {
        return Vec::new();
    }
    let mut out = huge_vec(n * d, 0f32);
    out.par_chunks_mut(ROWS * d)
        .zip(x.axis_chunks_iter(ndarray::Axis(0), ROWS).into_par_iter())
        .for_each(|(o, rows)| {
            for (o, &v) in o.iter_mut().zip(rows.iter()) {
                *o = v as f32;
            }
        });
    out
}

/// Squared Euclidean distance, summed in eight interleaved lanes (element `i`
/// into lane `i mod 8`) and the lanes added in a fixed order, so that
/// [`dist_avx2`] gives the same bits as this portable version.
#[inline(always)]
pub(super) fn dist(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let full = a.len().min(b.len()) / 8 * 8;
    for (x, y) in a[..full].chunks_exact(8).zip(b[..full].chunks_exact(8)) {
        for l in 0..8 {
            let t = x[l] - y[l];
            acc[l] += t * t;
        }
    }
    finish_lanes(acc, &a[full..], &b[full..])
}

/// Adds the tail (fewer than eight elements) into the first lanes and sums the lanes.
#[inline(always)]
pub(super) fn finish_lanes(mut acc: [f32; 8], ra: &[f32], rb: &[f32]) -> f32 {
    for (l, (x, y)) in ra.iter().zip(rb).enumerate() {
        let t = x - y;
        acc[l] += t * t;
    }
    // The order of a 128-bit horizontal sum: halves, then pairs two apart.
    ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))
}

/// [`dist`] in 256-bit registers (the compiler does not vectorise the portable
/// loop's lanes well on its own). Multiply and add stay separate, as in `dist`.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
pub(super) unsafe fn dist_avx2(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let full = a.len().min(b.len()) / 8 * 8;
    let mut acc = _mm256_setzero_ps();
    let mut i = 0;
    while i < full {
        // SAFETY: i + 8 <= full <= len of both slices.
        let t = unsafe {
            _mm256_sub_ps(
                _mm256_loadu_ps(a.as_ptr().add(i)),
                _mm256_loadu_ps(b.as_ptr().add(i)),
            )
        };
        acc = _mm256_add_ps(acc, _mm256_mul_ps(t, t));
        i += 8;
    }
    if full == a.len() {
        // No tail: sum the lanes in registers, in `finish_lanes`' order.
        let s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps::<1>(acc));
        let t = _mm_add_ps(s, _mm_movehl_ps(s, s));
        return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps::<1>(t, t)));
    }
    let mut lanes = [0f32; 8];
    // SAFETY: `lanes` holds eight f32.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc) };
    finish_lanes(lanes, &a[full..], &b[full..])
}

/// Insert `(d, j)` into a sorted list of fixed length if it is closer than the
/// last entry and not already present, with flag `flag`. Returns whether it was inserted.
#[inline]
pub(super) fn insert(list: &mut [(f32, u32)], flags: &mut [u8], d: f32, j: u32, flag: u8) -> bool {
    let k = list.len();
    let last = list[k - 1];
    if (d, j) >= last {
        return false;
    }
    if list.iter().any(|e| e.1 == j) {
        return false;
    }
    let mut pos = k - 1;
    while pos > 0 && (d, j) < list[pos - 1] {
        list[pos] = list[pos - 1];
        flags[pos] = flags[pos - 1];
        pos -= 1;
    }
    list[pos] = (d, j);
    flags[pos] = flag;
    true
}

pub(super) const EMPTY: (f32, u32) = (f32::INFINITY, u32::MAX);
