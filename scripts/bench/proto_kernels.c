// Benchmark-only prototype (not shipped): element-wise training kernels for WebAssembly SIMD,
// to measure what moving them out of NumPy would save. Built by scripts/bench_browser.py with
// the same flags as web/gemm (clang --target=wasm32 -msimd128 -O3 -nostdlib, imported memory).
//
//   adam_update(n, p, g, m, v, alpha, beta1, beta2, eps_hat)   one fused pass over n floats:
//     m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g;  p -= alpha * (m / (sqrt(v) + eps_hat))
//   with the operations in the order optimizers.Adam does them in NumPy, so results match bit
//   for bit (float32 throughout, IEEE sqrt and division).
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name), visibility("default")))

EXPORT(adam_update)
void adam_update(int n, float *p, const float *g, float *m, float *v, float alpha, float beta1,
                 float beta2, float eps_hat, float c1, float c2) {
  const v128_t B1 = wasm_f32x4_splat(beta1), C1 = wasm_f32x4_splat(c1);
  const v128_t B2 = wasm_f32x4_splat(beta2), C2 = wasm_f32x4_splat(c2);
  const v128_t A = wasm_f32x4_splat(alpha), E = wasm_f32x4_splat(eps_hat);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    v128_t gi = wasm_v128_load(g + i);
    v128_t mi = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(m + i), B1), wasm_f32x4_mul(gi, C1));
    v128_t vi = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(v + i), B2),
                               wasm_f32x4_mul(wasm_f32x4_mul(gi, gi), C2));
    wasm_v128_store(m + i, mi);
    wasm_v128_store(v + i, vi);
    v128_t step = wasm_f32x4_mul(wasm_f32x4_div(mi, wasm_f32x4_add(wasm_f32x4_sqrt(vi), E)), A);
    wasm_v128_store(p + i, wasm_f32x4_sub(wasm_v128_load(p + i), step));
  }
  for (; i < n; i++) {
    float gi = g[i];
    float mi = m[i] * beta1 + gi * c1;
    float vi = v[i] * beta2 + (gi * gi) * c2;
    m[i] = mi;
    v[i] = vi;
    p[i] -= (mi / (__builtin_sqrtf(vi) + eps_hat)) * alpha;
  }
}
