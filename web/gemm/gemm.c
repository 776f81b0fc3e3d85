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

// Register tiles (measured in Node 20 on the 2-core AMD EPYC this project runs on, best of
// 21-31 interleaved samples, web/gemm/bench.mjs): x86-64 engines have 16 SIMD registers and
// V8 keeps one for scratch, so a tile's accumulators + B vectors + broadcasts must stay <= 15.
//   2 x 16: 8 accumulators + 4 B vectors + 2 broadcasts. 52-53 GFLOP/s (relaxed) on the MLP's
//           products, where B panels and A rows are cache resident.
//   4 x 8:  8 accumulators + 2 B vectors + 4 broadcasts, the same 6 loads per 8 multiply-adds.
//           As fast on the MLP's products; with row blocks (below) 47-50 GFLOP/s on conv2's
//           forward product (8192 x 32 x 400) against 28 for 2 x 16 over whole columns.
//   3 x 16, 4 x 12, 6 x 8 (12 accumulators): 28-30 GFLOP/s everywhere: V8 spills.
// V8's loop for a 2 x 16 tile is about 28 x86 instructions per 8 multiply-adds (address
// arithmetic, a stride reloaded from the stack, the loop's interrupt check), so it is bound
// by instruction issue more than by FMA throughput. Unrolling k by 2 or 4 (fewer loop
// overheads) made V8 spill: 26-31 GFLOP/s. Compiling NN and TN separately, so one stride is
// the constant 1, changed nothing measurable.
// Every C element is still one sum over k in order (k blocks in order), whatever the tile or
// the loop order, so results do not depend on the tile a row or column falls into: a threaded
// product's chunks (threads.js) give the single-thread result bit for bit.
// K is walked in blocks: a KC x N slice of B stays in L1/L2 while the rows of A pass over it.
// 64 measured 5-10% faster than 256 or no blocking for X.T @ dZ (with the earlier loop
// order; with the current one 64, 128 and 256 are within noise). But when the
// whole K x 16 panel of B fits in L1 anyway (K <= KC_WHOLE: 32 KiB), blocking only costs: C
// is read and written once per block. Unblocked, the cnn preset's conv2 forward product
// (8192 x 32 x 400) ran 1.5-1.9x faster; products with a huge K (dW = X.T @ dZ over a batch
// of patches) stay blocked. (KC_WHOLE 1024, unblocking the MLP's K = 784, measured the same.)
#ifndef KC
#define KC 64
#endif
#ifndef KC_WHOLE
#define KC_WHOLE 512
#endif
// NN with more than 16 columns: rows of A in blocks of about MB_FLOATS floats (16 KiB) that
// every 8-wide column panel sweeps while the block is in L1/L2. Over whole columns, A (13 MB
// for conv2's forward product) came from L3 once per panel and the kernel ran at half speed.
#ifndef MB_FLOATS
#define MB_FLOATS 4096
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
// A tile of rows (1..4) x (nv full vectors (0..4) plus a partial vector of r lanes (0..3));
// rows * (nv + (r > 0)) <= 8. Called with constant shapes only, so the loops over rows and
// vectors unroll and the arrays live in registers.
INLINE void tile_bcast(int rows, int nv, int r, int K, const float *A, int sam, int sak,
                       const float *B, int ldb, float *C, int ldc, float beta,
                       const float *bias) {
  v128_t acc[4][5];
  for (int i = 0; i < 4; i++)
    for (int v = 0; v < 5; v++) acc[i][v] = wasm_f32x4_splat(0.0f);
  for (int k = 0; k < K; k++) {
    v128_t b[5];
    for (int v = 0; v < nv; v++) b[v] = wasm_v128_load(B + 4 * v);
    if (r) b[nv] = load_part(B + 4 * nv, r);
    for (int i = 0; i < rows; i++) {
      v128_t x = wasm_v128_load32_splat(A + i * sam);
      for (int v = 0; v < nv; v++) acc[i][v] = MADD(acc[i][v], x, b[v]);
      if (r) acc[i][nv] = MADD(acc[i][nv], x, b[nv]);
    }
    A += sak;
    B += ldb;
  }
  for (int i = 0; i < rows; i++) {
    for (int v = 0; v < nv; v++)
      finish(C + i * ldc + 4 * v, acc[i][v], 4, beta, bias ? bias + 4 * v : 0);
    if (r) finish(C + i * ldc + 4 * nv, acc[i][nv], r, beta, bias ? bias + 4 * nv : 0);
  }
}

// One tile of rows x w, w = 1..16 (rows <= 2) or 1..8 (rows <= 4): the width is split here so
// the inner loops above are compiled with constant shapes.
#define TILE(W) \
  case W: tile_bcast(rows, (W) / 4, (W) % 4, K, A, sam, sak, B, ldb, C, ldc, beta, bias); break
INLINE void tile_w16(int rows, int w, int K, const float *A, int sam, int sak, const float *B,
                     int ldb, float *C, int ldc, float beta, const float *bias) {
  switch (w) {
    TILE(16); TILE(15); TILE(14); TILE(13); TILE(12); TILE(11); TILE(10); TILE(9);
    TILE(8); TILE(7); TILE(6); TILE(5); TILE(4); TILE(3); TILE(2); TILE(1);
    default: break;
  }
}
INLINE void tile_w8(int rows, int w, int K, const float *A, int sam, int sak, const float *B,
                    int ldb, float *C, int ldc, float beta, const float *bias) {
  switch (w) {
    TILE(8); TILE(7); TILE(6); TILE(5); TILE(4); TILE(3); TILE(2); TILE(1);
    default: break;
  }
}
#undef TILE

// One K block (kc deep) of the whole product, in one of two loop orders, all measured (see
// the tiles above for how):
//   rows_2x16: 2 x 16 tiles, every column panel of a row pair before the next pair. For TN
//     the pair's strided A.T elements are then still in L1: 47 GFLOP/s against 42 over whole
//     columns for conv2's weight gradient (400 x 32 x 8192), 44-48 against 36-41 for the
//     dense layer's (512 x 128 x 128); row blocks with 4 x 8 tiles ran at 38. For NN with
//     N <= 16 there is one panel: A is read once in any order.
//   blocks_4x8: NN with N > 16: 4 x 8 tiles, row blocks of A swept by every 8-wide panel.
// Each is its own function, with its tiles inlined: with all tiles in one function V8
// allocated registers worse (44 against 52 GFLOP/s for the MLP's forward product, 26 when
// everything was inlined into one), and a call per tile cost 10-15% on 64-deep K blocks.
__attribute__((noinline)) static void rows_2x16(int M, int N, int kc, const float *A, int sam,
                                                int sak, const float *B, int ldb, float *C,
                                                int ldc, float beta, const float *bias) {
  for (int i = 0; i < M; i += 2) {
    for (int j = 0; j < N; j += 16) {
      int w = N - j < 16 ? N - j : 16;
      const float *a = A + i * sam, *bj = bias ? bias + j : 0;
      if (M - i >= 2)
        tile_w16(2, w, kc, a, sam, sak, B + j, ldb, C + i * ldc + j, ldc, beta, bj);
      else
        tile_w16(1, w, kc, a, sam, sak, B + j, ldb, C + i * ldc + j, ldc, beta, bj);
    }
  }
}

__attribute__((noinline)) static void blocks_4x8(int M, int N, int kc, const float *A, int sam,
                                                 int sak, const float *B, int ldb, float *C,
                                                 int ldc, float beta, const float *bias) {
  int mb = MB_FLOATS / kc / 4 * 4;
  if (mb < 4) mb = 4;
  for (int i0 = 0; i0 < M; i0 += mb) {
    int i1 = M - i0 < mb ? M : i0 + mb;
    for (int j = 0; j < N; j += 8) {
      int w = N - j < 8 ? N - j : 8;
      const float *bj = bias ? bias + j : 0;
      int i = i0;
      for (; i + 4 <= i1; i += 4)
        tile_w8(4, w, kc, A + i * sam, sam, sak, B + j, ldb, C + i * ldc + j, ldc, beta, bj);
      const float *a = A + i * sam;
      float *c = C + i * ldc + j;
      switch (i1 - i) {
        case 3: tile_w8(3, w, kc, a, sam, sak, B + j, ldb, c, ldc, beta, bj); break;
        case 2: tile_w8(2, w, kc, a, sam, sak, B + j, ldb, c, ldc, beta, bj); break;
        case 1: tile_w8(1, w, kc, a, sam, sak, B + j, ldb, c, ldc, beta, bj); break;
        default: break;
      }
    }
  }
}

static void gemm_bcast(int tn, int M, int N, int K, const float *A, int sam, int sak,
                       const float *B, int ldb, float *C, int ldc, float beta,
                       const float *bias) {
  if (M <= 0 || N <= 0) return;
  // K <= 0, the empty sum: C = beta * C + bias, done with zero-length tiles.
  if (K <= 0) rows_2x16(M, N, 0, A, sam, sak, B, ldb, C, ldc, beta, bias);
  int block = K <= KC_WHOLE ? K : KC;
  for (int k0 = 0; k0 < K; k0 += block) {
    int kc = K - k0 < block ? K - k0 : block;
    // Later K blocks accumulate onto the first; bias is added once, by the first block.
    const float *Ak = A + k0 * sak, *Bk = B + k0 * ldb, *bs = k0 == 0 ? bias : 0;
    float bt = k0 == 0 ? beta : 1.0f;
    if (tn || N <= 16)
      rows_2x16(M, N, kc, Ak, sam, sak, Bk, ldb, C, ldc, bt, bs);
    else
      blocks_4x8(M, N, kc, Ak, sam, sak, Bk, ldb, C, ldc, bt, bs);
  }
}

EXPORT(gemm_nn)
void gemm_nn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
             int ldc, float beta, const float *bias) {
  gemm_bcast(0, M, N, K, A, lda, 1, B, ldb, C, ldc, beta, bias);
}

EXPORT(gemm_tn)
void gemm_tn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
             int ldc, float beta, const float *bias) {
  gemm_bcast(1, M, N, K, A, 1, lda, B, ldb, C, ldc, beta, bias);
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
