// The element-wise work of the conv layers for WebAssembly SIMD (simd128), float32, NHWC.
//
// Linked into the same modules as gemm.c (scripts/build_gemm.sh) and, like it, owning no
// memory: every pointer is a byte address in the imported memory (Pyodide's heap), no data
// section, no shadow stack. Each result is bit-identical to the NumPy code it replaces
// (scribblenet.matmul.NumpyBackend): the same float32 operations in the same order, NaN and
// signed zeros included (col2im adds a pixel's patch values in NumPy's (i, j) order).
//
// Exports (sizes in elements; X, dX (n, h, w, c); patches (n·oh·ow, k·k·c), row (b, y, x)
// holding X[b, y + i − top, x + j − left, :] for i, j < k at column (i·k + j)·c):
//   im2col(n, h, w, c, k, top, left, oh, ow, X, cols)
//     fills cols; 0 where a patch reaches outside X (implicit zero padding).
//   col2im(n, h, w, c, k, top, left, oh, ow, dcols, dX)
//     dX = for each pixel, 0 + the sum of the patch entries copied from it, (i, j) row-major.
//   maxpool_forward(n, h, w, c, s, X, Y, arg)
//     Y (n, h/s, w/s, c) = max of each s×s window (NaN wins, ties keep the first); arg
//     (uint8, same shape, may be 0 for none) = offset i·s + j of the last strict improvement.
//   maxpool_backward(n, h, w, c, s, dY, arg, dX)
//     dX = dY · (offset == arg) at each window's offsets, 0 in the rows/columns past the
//     last whole window.
//   relu_forward(n, Z)          Z = Z < 0 ? 0 : Z in place (np.maximum(Z, 0): −0 and NaN kept)
//   relu_backward(n, dA, A)     dA = dA · (A > 0 ? 1 : 0) in place
//   sum_rows(n, m, A, out)      out (m,) = 0 + A[0] + A[1] + … + A[n − 1], A (n, m): the bias
//                               gradient, in the order np.sum(A, axis=0) adds for m >= 2

#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name), visibility("default")))
#define INLINE static inline __attribute__((always_inline))

// Loads/stores of the first r (0 < r <= 4) lanes; never touch memory past them.
INLINE v128_t load_n(const float *p, int r) {
  if (r == 4) return wasm_v128_load(p);
  if (r == 1) return wasm_v128_load32_zero(p);
  if (r == 2) return wasm_v128_load64_zero(p);
  return wasm_v128_load32_lane(p + 2, wasm_v128_load64_zero(p), 2);
}

INLINE void store_n(float *p, v128_t v, int r) {
  if (r == 4) {
    wasm_v128_store(p, v);
  } else if (r == 1) {
    wasm_v128_store32_lane(p, v, 0);
  } else if (r == 2) {
    wasm_v128_store64_lane(p, v, 0);
  } else {
    wasm_v128_store64_lane(p, v, 0);
    wasm_v128_store32_lane(p + 2, v, 2);
  }
}

// The first r bytes at p, zero-extended to the lanes of an i32x4.
INLINE v128_t load_bytes(const unsigned char *p, int r) {
  v128_t v = wasm_i32x4_splat(0);
  if (r == 4) {
    v = wasm_v128_load32_zero(p);
  } else {
    v = wasm_v128_load8_lane(p, v, 0);
    if (r > 1) v = wasm_v128_load8_lane(p + 1, v, 1);
    if (r > 2) v = wasm_v128_load8_lane(p + 2, v, 2);
  }
  return wasm_u32x4_extend_low_u16x8(wasm_u16x8_extend_low_u8x16(v));
}

// The i32x4 lanes t (each 0..255) as r bytes at p.
INLINE void store_bytes(unsigned char *p, v128_t t, int r) {
  v128_t b = wasm_u8x16_narrow_i16x8(wasm_u16x8_narrow_i32x4(t, t), t);
  if (r == 4) {
    wasm_v128_store32_lane(p, b, 0);
  } else {
    wasm_v128_store8_lane(p, b, 0);
    if (r > 1) wasm_v128_store8_lane(p + 1, b, 1);
    if (r > 2) wasm_v128_store8_lane(p + 2, b, 2);
  }
}

static void zero(float *dst, int len) {
  v128_t z = wasm_f32x4_splat(0.0f);
  int i = 0;
  for (; i + 4 <= len; i += 4) wasm_v128_store(dst + i, z);
  if (i < len) store_n(dst + i, z, len - i);
}

// len floats; from 4 on in whole vectors, the last one overlapping the one before it (so a
// 5-float patch row is two loads and two stores, with no branch on its tail).
INLINE void copy(float *dst, const float *src, int len) {
  if (len < 4) {
    store_n(dst, load_n(src, len), len);
    return;
  }
  int i = 0;
  for (; i + 4 < len; i += 4) wasm_v128_store(dst + i, wasm_v128_load(src + i));
  wasm_v128_store(dst + len - 4, wasm_v128_load(src + len - 4));
}

// ---------------------------------------------------------------------------------------
// im2col: row i of a patch is k·c contiguous floats of X (NHWC), clipped at the borders.
EXPORT(im2col)
void im2col(int n, int h, int w, int c, int k, int top, int left, int oh, int ow,
            const float *X, float *cols) {
  int kc = k * c;
  for (int b = 0; b < n; b++) {
    const float *xb = X + b * h * w * c;
    for (int y = 0; y < oh; y++) {
      for (int x = 0; x < ow; x++) {
        int x0 = x - left;  // input column of patch column 0
        int j0 = x0 < 0 ? -x0 : 0;
        int j1 = w - x0 < k ? w - x0 : k;  // patch columns j0 <= j < j1 lie inside X
        if (j1 < j0) j1 = j0;
        const float *src = xb + (y - top) * w * c + x0 * c;  // patch entry (0, 0)
        for (int i = 0; i < k; i++, cols += kc, src += w * c) {
          int r = y + i - top;
          if (r < 0 || r >= h || j1 == j0) {
            zero(cols, kc);
          } else if (j0 == 0 && j1 == k) {
            copy(cols, src, kc);  // the whole patch row lies inside X
          } else {
            if (j0) zero(cols, j0 * c);
            copy(cols + j0 * c, src + j0 * c, (j1 - j0) * c);
            if (j1 < k) zero(cols + j1 * c, (k - j1) * c);
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// col2im as a gather: pixel (r, s) was copied to patch (y, x) = (r + top − i, s + left − j)
// at entry (i, j), for every i, j that puts (y, x) inside the oh × ow output. Summing those
// in (i, j) order, from 0, is what NumPy's k² slice additions do to each element.
// nv (0..4) whole vectors of channels and r (0..3) more lanes, in one pass over (i, j).
INLINE void gather(const float *src, int at, float *dst, int nv, int r, int i0, int i1,
                   int j0, int j1, int row_step, int col_step) {
  v128_t z = wasm_f32x4_splat(0.0f);
  v128_t a0 = z, a1 = z, a2 = z, a3 = z, a4 = z;
  for (int i = i0; i < i1; i++) {
    const float *p = src + (at + i * row_step + j0 * col_step);
    for (int j = j0; j < j1; j++) {
      if (nv > 0) a0 = wasm_f32x4_add(a0, wasm_v128_load(p));
      if (nv > 1) a1 = wasm_f32x4_add(a1, wasm_v128_load(p + 4));
      if (nv > 2) a2 = wasm_f32x4_add(a2, wasm_v128_load(p + 8));
      if (nv > 3) a3 = wasm_f32x4_add(a3, wasm_v128_load(p + 12));
      if (r) a4 = wasm_f32x4_add(a4, load_n(p + 4 * nv, r));
      p += col_step;
    }
  }
  if (nv > 0) wasm_v128_store(dst, a0);
  if (nv > 1) wasm_v128_store(dst + 4, a1);
  if (nv > 2) wasm_v128_store(dst + 8, a2);
  if (nv > 3) wasm_v128_store(dst + 12, a3);
  if (r) store_n(dst + 4 * nv, a4, r);
}

// Channels g.. g + width (1..16) of one pixel: the width split once into constant shapes.
INLINE void gather_width(int width, const float *src, int at, float *dst, int i0, int i1,
                         int j0, int j1, int row_step, int col_step) {
#define GATHER(NV, R) gather(src, at, dst, NV, R, i0, i1, j0, j1, row_step, col_step)
  switch (width) {
    case 16: GATHER(4, 0); break;
    case 15: GATHER(3, 3); break;
    case 14: GATHER(3, 2); break;
    case 13: GATHER(3, 1); break;
    case 12: GATHER(3, 0); break;
    case 11: GATHER(2, 3); break;
    case 10: GATHER(2, 2); break;
    case 9: GATHER(2, 1); break;
    case 8: GATHER(2, 0); break;
    case 7: GATHER(1, 3); break;
    case 6: GATHER(1, 2); break;
    case 5: GATHER(1, 1); break;
    case 4: GATHER(1, 0); break;
    case 3: GATHER(0, 3); break;
    case 2: GATHER(0, 2); break;
    default: GATHER(0, 1); break;
  }
#undef GATHER
}

EXPORT(col2im)
void col2im(int n, int h, int w, int c, int k, int top, int left, int oh, int ow,
            const float *dcols, float *dX) {
  int kkc = k * k * c;
  // Moving to entry (i + 1, j): one patch row up (ow patches back), one kernel row on.
  int row_step = k * c - ow * kkc;
  int col_step = c - kkc;  // to entry (i, j + 1): one patch left, one kernel column on
  for (int b = 0; b < n; b++) {
    for (int r = 0; r < h; r++) {
      int yt = r + top;  // patch row for i = 0
      int i0 = yt - oh + 1 > 0 ? yt - oh + 1 : 0;
      int i1 = yt + 1 < k ? yt + 1 : k;
      for (int s = 0; s < w; s++) {
        int xt = s + left;
        int j0 = xt - ow + 1 > 0 ? xt - ow + 1 : 0;
        int j1 = xt + 1 < k ? xt + 1 : k;
        // Index of entry (0, 0) of patch (yt, xt), which may lie outside dcols: only the
        // entries i0 <= i < i1, j0 <= j < j1 are read.
        int at = ((b * oh + yt) * ow + xt) * kkc;
        float *out = dX + ((b * h + r) * w + s) * c;
        for (int g = 0; g < c; g += 16)
          gather_width(c - g < 16 ? c - g : 16, dcols + g, at, out + g, i0, i1, j0, j1,
                       row_step, col_step);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// Max-pool: NumPy's Y = maximum(Y, V) keeps Y when Y >= V or Y is NaN, else takes V; the
// argmax moves on strict improvements only (V > Y), so a tie keeps the earlier offset.
INLINE void pool_vec(const float *x, float *y, unsigned char *arg, int r, int s, int w, int c) {
  v128_t best = load_n(x, r);
  v128_t at = wasm_i32x4_splat(0);
  for (int i = 0; i < s; i++) {
    for (int j = 0; j < s; j++) {
      if (i == 0 && j == 0) continue;
      v128_t v = load_n(x + (i * w + j) * c, r);
      at = wasm_v128_bitselect(wasm_i32x4_splat(i * s + j), at, wasm_f32x4_gt(v, best));
      v128_t keep = wasm_v128_or(wasm_f32x4_ge(best, v), wasm_f32x4_ne(best, best));
      best = wasm_v128_bitselect(best, v, keep);
    }
  }
  store_n(y, best, r);
  if (arg) store_bytes(arg, at, r);
}

EXPORT(maxpool_forward)
void maxpool_forward(int n, int h, int w, int c, int s, const float *X, float *Y,
                     unsigned char *arg) {
  int oh = h / s, ow = w / s;
  for (int b = 0; b < n; b++) {
    for (int oy = 0; oy < oh; oy++) {
      for (int ox = 0; ox < ow; ox++) {
        const float *x = X + ((b * h + oy * s) * w + ox * s) * c;
        int o = ((b * oh + oy) * ow + ox) * c;
        unsigned char *a = arg ? arg + o : 0;
        int g = 0;
        for (; g + 4 <= c; g += 4) pool_vec(x + g, Y + o + g, a ? a + g : 0, 4, s, w, c);
        if (g < c) pool_vec(x + g, Y + o + g, a ? a + g : 0, c - g, s, w, c);
      }
    }
  }
}

// dY times (offset == arg) as 1.0 or 0.0, as NumPy multiplies by a boolean mask.
INLINE void unpool_vec(const float *dy, const unsigned char *arg, float *dx, int r, int s,
                       int w, int c) {
  v128_t g = load_n(dy, r);
  v128_t at = load_bytes(arg, r);
  v128_t one = wasm_f32x4_splat(1.0f);
  for (int i = 0; i < s; i++) {
    for (int j = 0; j < s; j++) {
      v128_t hit = wasm_v128_and(one, wasm_i32x4_eq(at, wasm_i32x4_splat(i * s + j)));
      store_n(dx + (i * w + j) * c, wasm_f32x4_mul(g, hit), r);
    }
  }
}

EXPORT(maxpool_backward)
void maxpool_backward(int n, int h, int w, int c, int s, const float *dY,
                      const unsigned char *arg, float *dX) {
  int oh = h / s, ow = w / s;
  for (int b = 0; b < n; b++) {
    float *xb = dX + b * h * w * c;
    for (int oy = 0; oy < oh; oy++) {
      for (int ox = 0; ox < ow; ox++) {
        int o = ((b * oh + oy) * ow + ox) * c;
        float *dx = xb + (oy * s * w + ox * s) * c;
        int g = 0;
        for (; g + 4 <= c; g += 4) unpool_vec(dY + o + g, arg + o + g, dx + g, 4, s, w, c);
        if (g < c) unpool_vec(dY + o + g, arg + o + g, dx + g, c - g, s, w, c);
      }
      if (ow * s < w)  // the columns past the last whole window, in this band of rows
        for (int i = 0; i < s; i++) zero(xb + ((oy * s + i) * w + ow * s) * c, (w - ow * s) * c);
    }
    if (oh * s < h) zero(xb + oh * s * w * c, (h - oh * s) * w * c);  // rows past them
  }
}

// ---------------------------------------------------------------------------------------
// ReLU, in place.
EXPORT(relu_forward)
void relu_forward(int n, float *Z) {
  v128_t z = wasm_f32x4_splat(0.0f);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    v128_t v = wasm_v128_load(Z + i);
    wasm_v128_store(Z + i, wasm_v128_andnot(v, wasm_f32x4_lt(v, z)));
  }
  if (i < n) {
    v128_t v = load_n(Z + i, n - i);
    store_n(Z + i, wasm_v128_andnot(v, wasm_f32x4_lt(v, z)), n - i);
  }
}

INLINE void relu_back_vec(float *dA, const float *A, int r) {
  v128_t on = wasm_v128_and(wasm_f32x4_splat(1.0f),
                            wasm_f32x4_gt(load_n(A, r), wasm_f32x4_splat(0.0f)));
  store_n(dA, wasm_f32x4_mul(load_n(dA, r), on), r);
}

EXPORT(relu_backward)
void relu_backward(int n, float *dA, const float *A) {
  int i = 0;
  for (; i + 4 <= n; i += 4) relu_back_vec(dA + i, A + i, 4);
  if (i < n) relu_back_vec(dA + i, A + i, n - i);
}

// ---------------------------------------------------------------------------------------
// Column sums: the gather above with one "column" per row and n rows, 16 channels a pass.
EXPORT(sum_rows)
void sum_rows(int n, int m, const float *A, float *out) {
  for (int g = 0; g < m; g += 16)
    gather_width(m - g < 16 ? m - g : 16, A + g, 0, out + g, 0, n, 0, 1, m, 0);
}
