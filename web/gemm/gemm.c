// Float32 GEMM for WebAssembly SIMD (simd128, optionally relaxed-SIMD FMA).
//
// C = A @ B (+ beta * C) (+ bias), row-major, arbitrary M, N, K and leading dimensions.
// The module owns no memory: it imports the host's linear memory (Pyodide's heap) and
// works in place on NumPy buffers addressed by their byte pointers. It has no data section
// and never touches the shadow stack, so it cannot clobber anything it was not given.
//
// Exports (all pointers are byte addresses in the imported memory, strides in elements):
//   gemm_nn(M, N, K, A, lda, B, ldb, C, ldc, beta, bias)   C = A @ B      A (M, K), B (K, N)
//   gemm_tn(M, N, K, A, lda, B, ldb, C, ldc, beta, bias)   C = A.T @ B    A (K, M), B (K, N)
//   gemm_nt(M, N, K, A, lda, B, ldb, C, ldc, beta, bias)   C = A @ B.T    A (M, K), B (N, K)
//   beta == 0 means C is write-only (never read, so garbage or NaN in it is harmless);
//   bias == 0 means no bias, else bias points at N floats added to every row of C.
//   gemm_features() -> 1 for the simd128 build, 3 for the relaxed-SIMD build.
//   adam_update(n, p, g, m, v, alpha, beta1, beta2, one_minus_beta1, one_minus_beta2, eps_hat)
//     one pass of Adam over n floats, in place on p, m, v (see adam_update below).
//
// Build: scripts/build_gemm.sh (clang --target=wasm32 -msimd128 -O3 -nostdlib).

#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name), visibility("default")))
#define INLINE static inline __attribute__((always_inline))

// Register tile: MR rows x NR columns of C. 2 x 16 keeps 8 accumulators + 4 B vectors + 2
// broadcasts within the 16 SIMD registers x86-64 engines have; the probe that preceded this
// kernel found it the fastest tile.
#define MR 2
#define NR 16
// K is walked in blocks: a KC x 16 slice of B (4 KiB) stays in L1 while every row pair of A
// passes over it. 64 measured 5-10% faster than 256 or no blocking for X.T @ dZ. But when the
// whole K x 16 panel of B fits in L1 anyway (K <= KC_WHOLE: 32 KiB), blocking only costs: C
// is read and written once per block. Unblocked, the cnn preset's conv2 forward product
// (8192 x 32 x 400) ran 1.5-1.9x faster; products with a huge K (dW = X.T @ dZ over a batch
// of patches) stay blocked.
#ifndef KC
#define KC 64
#endif
#ifndef KC_WHOLE
#define KC_WHOLE 512
#endif

#ifdef GEMM_RELAXED
#if __has_builtin(__builtin_wasm_relaxed_madd_f32x4)
#define MADD(acc, a, b) __builtin_wasm_relaxed_madd_f32x4((a), (b), (acc))
#else
// clang < 16 only knows the pre-standard opcode (0xfd 0xaf 0x01, computing x + y*z) for
// this; build_gemm.sh rewrites it to the standard f32x4.relaxed_madd (0xfd 0x85 0x02), which
// computes x*y + z on the same operand stack, hence the operand order here.
#define MADD(acc, a, b) __builtin_wasm_fma_f32x4((a), (b), (acc))
#endif
#define FEATURES 3
#else
#define MADD(acc, a, b) wasm_f32x4_add((acc), wasm_f32x4_mul((a), (b)))
#define FEATURES 1
#endif

// Loads/stores of the first r (0 < r < 4) lanes; never touch memory past them.
INLINE v128_t load_part(const float *p, int r) {
  if (r == 1) return wasm_v128_load32_zero(p);
  if (r == 2) return wasm_v128_load64_zero(p);
  return wasm_v128_load32_lane(p + 2, wasm_v128_load64_zero(p), 2);
}

INLINE void store_part(float *p, v128_t v, int r) {
  if (r == 1) {
    wasm_v128_store32_lane(p, v, 0);
  } else if (r == 2) {
    wasm_v128_store64_lane(p, v, 0);
  } else {
    wasm_v128_store64_lane(p, v, 0);
    wasm_v128_store32_lane(p + 2, v, 2);
  }
}

INLINE v128_t load_n(const float *p, int r) { return r == 4 ? wasm_v128_load(p) : load_part(p, r); }

INLINE void store_n(float *p, v128_t v, int r) {
  if (r == 4)
    wasm_v128_store(p, v);
  else
    store_part(p, v, r);
}

// Final value of one C vector: acc (+ beta * C) (+ bias), then store r lanes.
INLINE void finish(float *c, v128_t acc, int r, float beta, const float *bias) {
  if (beta != 0.0f)
    acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_splat(beta), load_n(c, r)));
  if (bias) acc = wasm_f32x4_add(acc, load_n(bias, r));
  store_n(c, acc, r);
}

// ---------------------------------------------------------------------------------------
// NN / TN: B rows are contiguous along n, so C rows are built from broadcast A elements
// times B row vectors. A is addressed with strides (sam, sak) to serve both A and A.T.
// rows in {1, 2}; nv full vectors (0..4) plus a partial vector of r lanes (0..3).
INLINE void tile_bcast(int rows, int nv, int r, int K, const float *A, int sam, int sak,
                       const float *B, int ldb, float *C, int ldc, float beta,
                       const float *bias) {
  v128_t z = wasm_f32x4_splat(0.0f);
  v128_t c00 = z, c01 = z, c02 = z, c03 = z, c04 = z;
  v128_t c10 = z, c11 = z, c12 = z, c13 = z, c14 = z;
  const float *a0 = A, *a1 = A + sam;
  for (int k = 0; k < K; k++) {
    v128_t b0 = z, b1 = z, b2 = z, b3 = z, b4 = z;
    if (nv > 0) b0 = wasm_v128_load(B);
    if (nv > 1) b1 = wasm_v128_load(B + 4);
    if (nv > 2) b2 = wasm_v128_load(B + 8);
    if (nv > 3) b3 = wasm_v128_load(B + 12);
    if (r) b4 = load_part(B + 4 * nv, r);
    v128_t x0 = wasm_v128_load32_splat(a0);
    if (nv > 0) c00 = MADD(c00, x0, b0);
    if (nv > 1) c01 = MADD(c01, x0, b1);
    if (nv > 2) c02 = MADD(c02, x0, b2);
    if (nv > 3) c03 = MADD(c03, x0, b3);
    if (r) c04 = MADD(c04, x0, b4);
    if (rows > 1) {
      v128_t x1 = wasm_v128_load32_splat(a1);
      if (nv > 0) c10 = MADD(c10, x1, b0);
      if (nv > 1) c11 = MADD(c11, x1, b1);
      if (nv > 2) c12 = MADD(c12, x1, b2);
      if (nv > 3) c13 = MADD(c13, x1, b3);
      if (r) c14 = MADD(c14, x1, b4);
    }
    a0 += sak;
    a1 += sak;
    B += ldb;
  }
  const float *bb = bias;
  float *c0 = C, *c1 = C + ldc;
  if (nv > 0) finish(c0, c00, 4, beta, bb);
  if (nv > 1) finish(c0 + 4, c01, 4, beta, bb ? bb + 4 : 0);
  if (nv > 2) finish(c0 + 8, c02, 4, beta, bb ? bb + 8 : 0);
  if (nv > 3) finish(c0 + 12, c03, 4, beta, bb ? bb + 12 : 0);
  if (r) finish(c0 + 4 * nv, c04, r, beta, bb ? bb + 4 * nv : 0);
  if (rows > 1) {
    if (nv > 0) finish(c1, c10, 4, beta, bb);
    if (nv > 1) finish(c1 + 4, c11, 4, beta, bb ? bb + 4 : 0);
    if (nv > 2) finish(c1 + 8, c12, 4, beta, bb ? bb + 8 : 0);
    if (nv > 3) finish(c1 + 12, c13, 4, beta, bb ? bb + 12 : 0);
    if (r) finish(c1 + 4 * nv, c14, r, beta, bb ? bb + 4 * nv : 0);
  }
}

// All rows of one column block of width w (1..16): the width is split once here so the
// inner loops above are compiled with constant shapes.
INLINE void panel_bcast_rows(int rows, int w, int K, const float *A, int sam, int sak,
                             const float *B, int ldb, float *C, int ldc, float beta,
                             const float *bias) {
#define PANEL(NV, R) tile_bcast(rows, NV, R, K, A, sam, sak, B, ldb, C, ldc, beta, bias)
  switch (w) {
    case 16: PANEL(4, 0); break;
    case 15: PANEL(3, 3); break;
    case 14: PANEL(3, 2); break;
    case 13: PANEL(3, 1); break;
    case 12: PANEL(3, 0); break;
    case 11: PANEL(2, 3); break;
    case 10: PANEL(2, 2); break;
    case 9: PANEL(2, 1); break;
    case 8: PANEL(2, 0); break;
    case 7: PANEL(1, 3); break;
    case 6: PANEL(1, 2); break;
    case 5: PANEL(1, 1); break;
    case 4: PANEL(1, 0); break;
    case 3: PANEL(0, 3); break;
    case 2: PANEL(0, 2); break;
    default: PANEL(0, 1); break;
  }
#undef PANEL
}

static void gemm_bcast(int M, int N, int K, const float *A, int sam, int sak, const float *B,
                       int ldb, float *C, int ldc, float beta, const float *bias) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    // Empty sum: C = beta * C + bias, done with a zero-length tile.
    for (int i = 0; i < M; i++)
      for (int j = 0; j < N; j += NR) {
        int w = N - j < NR ? N - j : NR;
        panel_bcast_rows(1, w, 0, A, sam, sak, B, ldb, C + i * ldc + j, ldc, beta,
                         bias ? bias + j : 0);
      }
    return;
  }
  int block = K <= KC_WHOLE ? K : KC;
  for (int k0 = 0; k0 < K; k0 += block) {
    int kc = K - k0 < block ? K - k0 : block;
    // Later K blocks accumulate onto the first; bias is added once, by the first block.
    float bt = k0 == 0 ? beta : 1.0f;
    const float *bs = k0 == 0 ? bias : 0;
    const float *Ak = A + k0 * sak;
    const float *Bk = B + k0 * ldb;
    for (int j = 0; j < N; j += NR) {
      int w = N - j < NR ? N - j : NR;
      const float *bj = bs ? bs + j : 0;
      int i = 0;
      for (; i + MR <= M; i += MR)
        panel_bcast_rows(2, w, kc, Ak + i * sam, sam, sak, Bk + j, ldb, C + i * ldc + j,
                         ldc, bt, bj);
      if (i < M)
        panel_bcast_rows(1, w, kc, Ak + i * sam, sam, sak, Bk + j, ldb, C + i * ldc + j,
                         ldc, bt, bj);
    }
  }
}

EXPORT(gemm_nn)
void gemm_nn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
             int ldc, float beta, const float *bias) {
  gemm_bcast(M, N, K, A, lda, 1, B, ldb, C, ldc, beta, bias);
}

EXPORT(gemm_tn)
void gemm_tn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
             int ldc, float beta, const float *bias) {
  gemm_bcast(M, N, K, A, 1, lda, B, ldb, C, ldc, beta, bias);
}

// ---------------------------------------------------------------------------------------
// NT: rows of A and rows of B are both contiguous along k, so each C element is a dot
// product. A 2 x 4 tile keeps 8 k-vector accumulators and reduces them at the end.

// [sum(a), sum(b), sum(c), sum(d)] by a 4x4 transpose-add.
INLINE v128_t hsum4(v128_t a, v128_t b, v128_t c, v128_t d) {
  // ab = [a0+a2, b0+b2, a1+a3, b1+b3], likewise cd; then fold the halves together.
  v128_t ab = wasm_f32x4_add(wasm_i32x4_shuffle(a, b, 0, 4, 1, 5),
                             wasm_i32x4_shuffle(a, b, 2, 6, 3, 7));
  v128_t cd = wasm_f32x4_add(wasm_i32x4_shuffle(c, d, 0, 4, 1, 5),
                             wasm_i32x4_shuffle(c, d, 2, 6, 3, 7));
  return wasm_f32x4_add(wasm_i32x4_shuffle(ab, cd, 0, 1, 4, 5),
                        wasm_i32x4_shuffle(ab, cd, 2, 3, 6, 7));
}

// rows in {1, 2}; cols 1..4 valid columns (missing ones re-read row 0 of B and are dropped).
INLINE void tile_dot(int rows, int cols, int K, const float *A, int lda, const float *B,
                     int ldb, float *C, int ldc, float beta, const float *bias) {
  v128_t z = wasm_f32x4_splat(0.0f);
  v128_t s00 = z, s01 = z, s02 = z, s03 = z, s10 = z, s11 = z, s12 = z, s13 = z;
  const float *a0 = A, *a1 = rows > 1 ? A + lda : A;
  const float *b0 = B, *b1 = cols > 1 ? B + ldb : B, *b2 = cols > 2 ? B + 2 * ldb : B,
              *b3 = cols > 3 ? B + 3 * ldb : B;
  int k = 0;
  for (; k + 4 <= K; k += 4) {
    v128_t x0 = wasm_v128_load(a0 + k), x1 = wasm_v128_load(a1 + k);
    v128_t y0 = wasm_v128_load(b0 + k), y1 = wasm_v128_load(b1 + k);
    v128_t y2 = wasm_v128_load(b2 + k), y3 = wasm_v128_load(b3 + k);
    s00 = MADD(s00, x0, y0);
    s01 = MADD(s01, x0, y1);
    s02 = MADD(s02, x0, y2);
    s03 = MADD(s03, x0, y3);
    s10 = MADD(s10, x1, y0);
    s11 = MADD(s11, x1, y1);
    s12 = MADD(s12, x1, y2);
    s13 = MADD(s13, x1, y3);
  }
  int rk = K - k;
  if (rk) {
    // Zero-filled partial loads: the missing lanes contribute 0 * 0.
    v128_t x0 = load_part(a0 + k, rk), x1 = load_part(a1 + k, rk);
    v128_t y0 = load_part(b0 + k, rk), y1 = load_part(b1 + k, rk);
    v128_t y2 = load_part(b2 + k, rk), y3 = load_part(b3 + k, rk);
    s00 = MADD(s00, x0, y0);
    s01 = MADD(s01, x0, y1);
    s02 = MADD(s02, x0, y2);
    s03 = MADD(s03, x0, y3);
    s10 = MADD(s10, x1, y0);
    s11 = MADD(s11, x1, y1);
    s12 = MADD(s12, x1, y2);
    s13 = MADD(s13, x1, y3);
  }
  finish(C, hsum4(s00, s01, s02, s03), cols, beta, bias);
  if (rows > 1) finish(C + ldc, hsum4(s10, s11, s12, s13), cols, beta, bias);
}

INLINE void row_dot(int rows, int N, int K, const float *A, int lda, const float *B, int ldb,
                    float *C, int ldc, float beta, const float *bias) {
  int j = 0;
  for (; j + 4 <= N; j += 4)
    tile_dot(rows, 4, K, A, lda, B + j * ldb, ldb, C + j, ldc, beta, bias ? bias + j : 0);
  const float *bj = bias ? bias + j : 0;
  switch (N - j) {
    case 3: tile_dot(rows, 3, K, A, lda, B + j * ldb, ldb, C + j, ldc, beta, bj); break;
    case 2: tile_dot(rows, 2, K, A, lda, B + j * ldb, ldb, C + j, ldc, beta, bj); break;
    case 1: tile_dot(rows, 1, K, A, lda, B + j * ldb, ldb, C + j, ldc, beta, bj); break;
    default: break;
  }
}

EXPORT(gemm_nt)
void gemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
             int ldc, float beta, const float *bias) {
  if (M <= 0 || N <= 0) return;
  if (K < 0) K = 0;
  int i = 0;
  for (; i + 2 <= M; i += 2)
    row_dot(2, N, K, A + i * lda, lda, B, ldb, C + i * ldc, ldc, beta, bias);
  if (i < M) row_dot(1, N, K, A + i * lda, lda, B, ldb, C + i * ldc, ldc, beta, bias);
}

// ---------------------------------------------------------------------------------------
// Adam: the ten NumPy passes of optimizers.Adam._update as one pass over the arrays,
//   m = m*b1 + g*(1-b1);  v = v*b2 + (g*g)*(1-b2);  p -= (m / (sqrt(v) + eps_hat)) * alpha
// with every float32 operation in NumPy's order and rounding (separate multiply and add, no
// FMA even in the relaxed build; IEEE sqrt and division), so the result is bit-identical.
// The 1-b scalars come from the caller, rounded from the same double NumPy would round.
// The last n % 4 elements use partial-lane loads and stores, like the GEMM's edge tiles.
INLINE void adam_vec(float *p, const float *g, float *m, float *v, int r, v128_t A, v128_t B1,
                     v128_t B2, v128_t C1, v128_t C2, v128_t E) {
  v128_t gi = load_n(g, r);
  v128_t mi = wasm_f32x4_add(wasm_f32x4_mul(load_n(m, r), B1), wasm_f32x4_mul(gi, C1));
  v128_t vi = wasm_f32x4_add(wasm_f32x4_mul(load_n(v, r), B2),
                             wasm_f32x4_mul(wasm_f32x4_mul(gi, gi), C2));
  v128_t step = wasm_f32x4_mul(wasm_f32x4_div(mi, wasm_f32x4_add(wasm_f32x4_sqrt(vi), E)), A);
  store_n(m, mi, r);
  store_n(v, vi, r);
  store_n(p, wasm_f32x4_sub(load_n(p, r), step), r);
}

EXPORT(adam_update)
void adam_update(int n, float *p, const float *g, float *m, float *v, float alpha, float beta1,
                 float beta2, float one_minus_beta1, float one_minus_beta2, float eps_hat) {
  const v128_t A = wasm_f32x4_splat(alpha), E = wasm_f32x4_splat(eps_hat);
  const v128_t B1 = wasm_f32x4_splat(beta1), C1 = wasm_f32x4_splat(one_minus_beta1);
  const v128_t B2 = wasm_f32x4_splat(beta2), C2 = wasm_f32x4_splat(one_minus_beta2);
  int i = 0;
  for (; i + 4 <= n; i += 4) adam_vec(p + i, g + i, m + i, v + i, 4, A, B1, B2, C1, C2, E);
  switch (n - i) {
    case 3: adam_vec(p + i, g + i, m + i, v + i, 3, A, B1, B2, C1, C2, E); break;
    case 2: adam_vec(p + i, g + i, m + i, v + i, 2, A, B1, B2, C1, C2, E); break;
    case 1: adam_vec(p + i, g + i, m + i, v + i, 1, A, B1, B2, C1, C2, E); break;
    default: break;
  }
}

EXPORT(gemm_features)
int gemm_features(void) { return FEATURES; }
