/* STSTNet's first block fused: 3x3 convolution (input padded by 2), ReLU, the batch sums for
 * batch normalisation, and 3x3 max pooling (stride 3, padding 1) with its argmax, forward and
 * backward, one clip at a time so every map stays in the cache. Single-threaded and in a fixed
 * order: the same inputs give the same bits. Layouts are channels-last; K = 27 = 3 x 3 x 3.
 * The 16 maps of a position are one vector (GCC/Clang vector extensions), so the compiler uses
 * the CPU's widest registers whatever they are.
 *
 * Built at first use by merkit.models.kernels (cc -O3), called through ctypes.
 */
#include <stdint.h>
#include <string.h>
#include <math.h>

#define K 27
#define C 16 /* STSTNet's 3 + 5 + 8 maps */

/* 1 where the 16 maps fit one register (AVX-512). Compiled for AVX2 only, the compiler splits and
 * spills the vectors: the kernel measured 6x slower than with AVX-512, no faster than PyTorch's
 * layers, so merkit does not use it there. */
int stem_fast(void) {
#ifdef __AVX512F__
    return 1;
#else
    return 0;
#endif
}

typedef float vec __attribute__((vector_size(C * sizeof(float))));
typedef int32_t ivec __attribute__((vector_size(C * sizeof(int32_t))));

static inline vec load(const float *p) { vec v; memcpy(&v, p, sizeof v); return v; }
static inline void store(float *p, vec v) { memcpy(p, &v, sizeof v); }
static inline vec splat(float s) { return (vec){0} + s; }
static inline vec where_positive(vec value, vec test) { return (vec)((ivec)value & (test > 0)); }  /* value, 0 where test <= 0 */

/* ReLU(conv) at output position (i, j): the patch's rows are 9 consecutive values (kx, q) of
 * the padded clip; three independent chains, one per row, keep the FMA units busy. */
static inline vec conv_relu(const float *xs, int wp, int i, int j, const vec *wv, vec bias) {
    const float *r0 = xs + (i * wp + j) * 3, *r1 = r0 + wp * 3, *r2 = r1 + wp * 3;
    vec acc0 = bias, acc1 = {0}, acc2 = {0};
    for (int m = 0; m < 9; m++) {
        acc0 += r0[m] * wv[m];
        acc1 += r1[m] * wv[m + 9];
        acc2 += r2[m] * wv[m + 18];
    }
    const vec acc = acc0 + acc1 + acc2;
    return where_positive(acc, acc);
}

static inline int max_int(int a, int b) { return a > b ? a : b; }
static inline int min_int(int a, int b) { return a < b ? a : b; }

/* x (nb, hp, wp, 3) padded clips; w (27, 16); b, sign (16);
 * pooled, argmax (nb, ph, pw, 16); r (nb, ho, wo, 16) ReLU output; s1, s2 (16) sums of r, r^2.
 * Positions are visited window by window, so a window's running maximum stays in registers;
 * the rows and columns no window covers are visited after. */
void stem_forward(const float *x, int hp, int wp, int nb,
                  const float *w, const float *b, const float *sign,
                  float *pooled, int32_t *argmax, float *r, double *s1, double *s2) {
    const int ho = hp - 2, wo = wp - 2, ph = (ho - 1) / 3 + 1, pw = (wo - 1) / 3 + 1;
    const int covered_rows = min_int(ho, 3 * ph - 1), covered_cols = min_int(wo, 3 * pw - 1);
    vec wv[K];
    for (int t = 0; t < K; t++) wv[t] = load(w + t * C);
    const vec bias = load(b), signs = load(sign);
    for (int n = 0; n < nb; n++) {
        const float *xs = x + (size_t)n * hp * wp * 3;
        float *rn = r + (size_t)n * ho * wo * C;
        float *pn = pooled + (size_t)n * ph * pw * C;
        int32_t *an = argmax + (size_t)n * ph * pw * C;
        vec t1 = {0}, t2 = {0};
        for (int u = 0; u < ph; u++) {
            for (int q = 0; q < pw; q++) {
                vec best = (vec){0} - INFINITY, w1 = {0}, w2 = {0};  /* per-window sums: short chains */
                ivec where = {0};
                for (int i = max_int(0, 3 * u - 1); i <= min_int(ho - 1, 3 * u + 1); i++) {
                    for (int j = max_int(0, 3 * q - 1); j <= min_int(wo - 1, 3 * q + 1); j++) {
                        const vec v = conv_relu(xs, wp, i, j, wv, bias);
                        store(rn + (i * wo + j) * C, v);
                        w1 += v;
                        w2 += v * v;
                        const vec s = signs * v;
                        const ivec larger = s > best, at = (ivec){0} + (i * wo + j);
                        best = (vec)(((ivec)s & larger) | ((ivec)best & ~larger));
                        where = (at & larger) | (where & ~larger);
                    }
                }
                t1 += w1;
                t2 += w2;
                store(pn + (u * pw + q) * C, best);
                memcpy(an + (u * pw + q) * C, &where, sizeof where);
            }
        }
        for (int i = 0; i < ho; i++) {
            for (int j = (i < covered_rows ? covered_cols : 0); j < wo; j++) {
                const vec v = conv_relu(xs, wp, i, j, wv, bias);
                store(rn + (i * wo + j) * C, v);
                t1 += v;
                t2 += v * v;
            }
        }
        for (int k = 0; k < C; k++) { s1[k] += t1[k]; s2[k] += t2[k]; }
    }
}

/* The weight and bias gradients, given per map the gradient through the batch statistics,
 * g = a + k r where r > 0, plus gp (nb, ph, pw, 16) at each window's argmax (where r > 0).
 * dw (27, 16) and db (16) are accumulated into; scratch holds (ho * wo * 16) floats. */
void stem_backward(const float *x, int hp, int wp, int nb,
                   const float *r, const float *a, const float *kk, const float *gp,
                   const int32_t *argmax, float *scratch, double *dw, double *db) {
    const int ho = hp - 2, wo = wp - 2, ph = (ho - 1) / 3 + 1, pw = (wo - 1) / 3 + 1;
    const vec av = load(a), kv = load(kk);
    for (int n = 0; n < nb; n++) {
        const float *xs = x + (size_t)n * hp * wp * 3;
        const float *rn = r + (size_t)n * ho * wo * C;
        const float *gn = gp + (size_t)n * ph * pw * C;
        const int32_t *an = argmax + (size_t)n * ph * pw * C;
        memset(scratch, 0, sizeof(float) * ho * wo * C);
        for (int q = 0; q < ph * pw; q++)
            for (int k = 0; k < C; k++) scratch[an[q * C + k] * C + k] += gn[q * C + k];
        vec acc_w[K], acc_b = {0};
        for (int t = 0; t < K; t++) acc_w[t] = (vec){0};
        for (int i = 0; i < ho; i++) {
            for (int j = 0; j < wo; j++) {
                const int pos = i * wo + j;
                const vec rp = load(rn + pos * C);
                const vec g = where_positive(av + kv * rp + load(scratch + pos * C), rp);
                for (int ky = 0; ky < 3; ky++) {
                    const float *row = xs + ((i + ky) * wp + j) * 3;  /* 9 consecutive values: kx, q */
                    for (int m = 0; m < 9; m++) acc_w[ky * 9 + m] += row[m] * g;
                }
                acc_b += g;
            }
        }
        for (int t = 0; t < K; t++)
            for (int k = 0; k < C; k++) dw[t * C + k] += acc_w[t][k];
        for (int k = 0; k < C; k++) db[k] += acc_b[k];
    }
}

/* Dropout's draws: splitmix64 seeded from PyTorch's generator. Its n-th output is a function of
 * seed + n * GAMMA alone, so the eight 64-bit draws of one position are computed side by side;
 * read as 16 32-bit halves (low half first), they give one draw per map. */
typedef uint64_t u64vec __attribute__((vector_size(C * sizeof(float))));
typedef uint32_t uvec __attribute__((vector_size(C * sizeof(float))));
#define GAMMA 0x9E3779B97F4A7C15ull

static inline uvec draws(uint64_t seed, uint64_t position) {
    const u64vec lane = {1, 2, 3, 4, 5, 6, 7, 8};
    u64vec z = seed + (position * 8 + lane) * GAMMA;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (uvec)(z ^ (z >> 31));
}

/* After the pooling: batch normalisation of the pooled r (mean, inv = 1 / sqrt(var + eps) per
 * map), dropout (keep with probability 1 - drop, scale by 1 / (1 - drop)), 2x2 average pooling.
 * pooled (nb, ph, pw, 16) holds sign * max(sign * r); out (nb, 16, ph / 2, pw / 2) channels-first;
 * xhat (nb, ph, pw, 16) and keep, dropout's factor (0 or 1 / (1 - drop)), are saved for the
 * backward pass. */
void head_forward(const float *pooled, int nb, int ph, int pw, const float *sign, const float *mean,
                  const float *inv, const float *gamma, const float *beta, float drop, uint64_t seed,
                  float *xhat, float *keep, float *out) {
    const int oh = ph / 2, ow = pw / 2;
    const vec scale = splat(drop > 0 ? 1.0f / (1.0f - drop) : 1.0f);
    const uint32_t threshold = (uint32_t)(drop * 4294967296.0);
    const vec signs = load(sign), means = load(mean), invs = load(inv), gammas = load(gamma), betas = load(beta);
    vec pooled_out[oh * ow];
    for (int n = 0; n < nb; n++) {
        for (int o = 0; o < oh * ow; o++) pooled_out[o] = (vec){0};
        for (int u = 0; u < ph; u++)
            for (int v = 0; v < pw; v++) {
                const size_t position = ((size_t)n * ph + u) * pw + v;
                const vec xh = (signs * load(pooled + position * C) - means) * invs;
                const vec factor = (vec)((ivec)scale & (ivec)(draws(seed, position) >= threshold));
                store(xhat + position * C, xh);
                store(keep + position * C, factor);
                if (u < 2 * oh && v < 2 * ow) pooled_out[(u / 2) * ow + v / 2] += 0.25f * factor * (xh * gammas + betas);
            }
        float *on = out + (size_t)n * C * oh * ow;
        for (int o = 0; o < oh * ow; o++)
            for (int k = 0; k < C; k++) on[k * oh * ow + o] = pooled_out[o][k];
    }
}

/* The gradients of head_forward: from g (nb, 16, ph / 2, pw / 2), the gradient at each pooled
 * value through its own normalisation, gp (nb, ph, pw, 16), and the per-map sums the batch
 * statistics and the affine parameters need: dgamma, dbeta, sum gp, sum gp * xhat (16 each). */
void head_backward(const float *g, int nb, int ph, int pw, const float *xhat, const float *keep,
                   const float *gamma, const float *inv,
                   float *gp, double *dgamma, double *dbeta, double *sum_gp, double *sum_gp_xhat) {
    const int oh = ph / 2, ow = pw / 2;
    const vec gamma_inv = load(gamma) * load(inv);
    vec g_out[oh * ow];
    for (int n = 0; n < nb; n++) {
        const float *gn = g + (size_t)n * C * oh * ow;
        for (int o = 0; o < oh * ow; o++)
            for (int k = 0; k < C; k++) g_out[o][k] = 0.25f * gn[k * oh * ow + o];
        vec t_gamma = {0}, t_beta = {0}, t_gp = {0}, t_gp_xhat = {0};
        for (int u = 0; u < 2 * oh; u++)
            for (int v = 0; v < 2 * ow; v++) {
                const size_t at = (((size_t)n * ph + u) * pw + v) * C;
                const vec gy = load(keep + at) * g_out[(u / 2) * ow + v / 2], xh = load(xhat + at);
                const vec gpk = gy * gamma_inv;
                store(gp + at, gpk);
                t_beta += gy;
                t_gamma += gy * xh;
                t_gp += gpk;
                t_gp_xhat += gpk * xh;
            }
        for (int u = 0; u < ph; u++)  /* rows and columns the average pooling leaves out get no gradient */
            for (int v = (u < 2 * oh ? 2 * ow : 0); v < pw; v++) store(gp + (((size_t)n * ph + u) * pw + v) * C, (vec){0});
        for (int k = 0; k < C; k++) {
            dgamma[k] += t_gamma[k];
            dbeta[k] += t_beta[k];
            sum_gp[k] += t_gp[k];
            sum_gp_xhat[k] += t_gp_xhat[k];
        }
    }
}
