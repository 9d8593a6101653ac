// Does ggml-cpu give one row of a matrix product the same bits whether it is computed alone (n = 1)
// or as one of n rows? Built and run by bench/ggml_row_invariance.sh against the ggml libraries
// that llama-cpp-python installed (the same kernels omnimini runs). Findings: docs/concurrency.md,
// "Load invariance".
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-cpu.h"
#include "ggml.h"

static float frand(void) { return (float) rand() / RAND_MAX * 2.0f - 1.0f; }

// C = A (m rows of k, type ta, one matrix per stream) x B (n columns of k, f32, per stream).
// B's entries from `kvalid` on are 0 and A's are noise there (unused, masked KV cells).
// Copies out column 0 of stream 0.
static void product(enum ggml_type ta, int k, int m, int n, int streams, int kvalid, int threads,
                    const float * a, const float * b, float * out) {
    struct ggml_init_params ip = { (size_t) 512 << 20, NULL, false };
    struct ggml_context * ctx = ggml_init(ip);
    struct ggml_tensor * A = ggml_new_tensor_4d(ctx, ta, k, m, 1, streams);
    struct ggml_tensor * B = ggml_new_tensor_4d(ctx, GGML_TYPE_F32, k, n, 1, streams);
    float * fa = malloc(sizeof(float) * k * m * streams);
    for (int s = 0; s < streams; s++) for (int r = 0; r < m; r++) for (int i = 0; i < k; i++)
        fa[(s * m + r) * k + i] = i < kvalid ? a[r * kvalid + i] : frand();
    if (ta == GGML_TYPE_F16) {
        for (int i = 0; i < k * m * streams; i++) ((ggml_fp16_t *) A->data)[i] = ggml_fp32_to_fp16(fa[i]);
    } else {
        ggml_quantize_chunk(ta, fa, A->data, 0, m * streams, k, NULL);
    }
    for (int s = 0; s < streams; s++) for (int c = 0; c < n; c++) for (int i = 0; i < k; i++)
        ((float *) B->data)[(s * n + c) * k + i] = i < kvalid ? b[c * kvalid + i] : 0.0f;
    struct ggml_tensor * C = ggml_mul_mat(ctx, A, B);
    struct ggml_cgraph * g = ggml_new_graph(ctx);
    ggml_build_forward_expand(g, C);
    ggml_graph_compute_with_ctx(ctx, g, threads);
    memcpy(out, C->data, sizeof(float) * m);
    free(fa);
    ggml_free(ctx);
}

int main(void) {
    struct { enum ggml_type t; int k, m; const char * what; } cases[] = {
        { GGML_TYPE_Q4_1, 576, 1536, "Q4_1 576x1536 (SmolLM2-135M projections)" },
        { GGML_TYPE_Q8_0, 576, 4096, "Q8_0 576x4096 (SmolLM2-135M output layer)" },
        { GGML_TYPE_F16, 64, 512, "F16 64x512 (attention K*Q over 512 cells)" },
        { GGML_TYPE_F16, 256, 64, "F16 256x64 (attention V*softmax over 256 cells)" },
        { GGML_TYPE_Q4_K, 1024, 512, "Q4_K 1024x512 (K-quant models, plain buffer)" },
        { GGML_TYPE_Q6_K, 1024, 512, "Q6_K 1024x512 (K-quant models, plain buffer)" },
    };
    const int ns[] = { 2, 3, 8, 17 };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const int k = cases[c].k, m = cases[c].m;
        float * a = malloc(sizeof(float) * k * m), * b = malloc(sizeof(float) * k * 32);
        float * ref = malloc(sizeof(float) * m), * out = malloc(sizeof(float) * m);
        srand(1);
        for (int i = 0; i < k * m; i++) a[i] = frand();
        for (int i = 0; i < k * 32; i++) b[i] = frand();
        product(cases[c].t, k, m, 1, 1, k, 1, a, b, ref);
        printf("%s: row alone (n=1) vs the same row among n\n", cases[c].what);
        for (size_t q = 0; q < sizeof ns / sizeof ns[0]; q++) {
            for (int threads = 1; threads <= 2; threads++) {
                product(cases[c].t, k, m, ns[q], 1, k, threads, a, b, out);
                int differ = 0; float most = 0;
                for (int i = 0; i < m; i++) { float d = fabsf(out[i] - ref[i]); differ += d > 0; if (d > most) most = d; }
                printf("  n=%2d, %d thread(s): %4d of %d outputs differ, max |diff| %.3g\n", ns[q], threads, differ, m, most);
            }
        }
        if (cases[c].t == GGML_TYPE_F16 && m == 64) {      // V*softmax: padding and streams
            const int pads[] = { 512, 768 }, nstreams[] = { 1, 8 };
            for (int p = 0; p < 2; p++) for (int s = 0; s < 2; s++) {
                product(cases[c].t, pads[p], m, 1, nstreams[s], k, 2, a, b, out);
                int differ = 0;
                for (int i = 0; i < m; i++) differ += out[i] != ref[i];
                printf("  n=1, %d cells (%d weighted 0), %d stream(s): %d of %d outputs differ\n",
                       pads[p], pads[p] - k, nstreams[s], differ, m);
            }
        }
        free(a); free(b); free(ref); free(out);
    }
    return 0;
}
