// CUDA kernels of the GPU engine (implicit_nn/engine/gpu.py loads them with cupy.RawModule).
//
// Numerics follow ../shared/spec/engine.md: float32 everywhere, float64 exactly where the original's
// expressions contain double literals (§13.2), no fast math (§13.1). Rounding is decided here, not
// by a compiler: gpu.py compiles with --fmad=false, so every plain operator rounds once, and each
// multiply-add that the original's compiled kernels fuse is written as fmaf / fma (the fma table in
// docs/compatibility.md). The device maths are libdevice 11's algorithms written out (atanf, expf,
// logf, tanhf below), as the CPU engines' engine/cudamath.py, so results do not depend on the
// CUDA version either.
// Layout: every per-sample buffer is sample-major (element (d, j) of a row of length R at d*R + j).
// Index arrays are int64 (numpy's default), counts are passed as long long.
//
// Batched prediction: `batch` rows form one minibatch ("chunk") and `active[chunk]` freezes a chunk
// once its own fixed-point test has stopped it, so many minibatches can iterate side by side while
// each runs exactly the iterations it would run alone (engine.md §3.3, §12).

#if !defined(__CUDA_ARCH__)
// Built as host C++ (a CPU test harness): no contraction there either.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#endif

typedef long long i64;

#define THREADS 256

// ---------------------------------------------------------------------------------------------
// Device maths: libdevice 11's float32 sequences (the original's toolkit), as engine/cudamath.py.

__device__ float bits_float(unsigned int bits)
{
    return __int_as_float((int)bits);
}

#define F32_INF bits_float(0x7F800000u)

__device__ float flush_subnormal(float x)
{
    return fabsf(x) < 1.17549435e-38f ? copysignf(0.0f, x) : x;
}

// ex2.approx.ftz.f32 and rcp.approx.ftz.f32: the hardware instructions on a GPU; built elsewhere,
// the model the CPU engines use (the correctly rounded value, subnormals flushed).
__device__ float ex2_approx(float x)
{
#if defined(__CUDA_ARCH__)
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
#else
    return flush_subnormal((float)exp2((double)flush_subnormal(x)));
#endif
}

__device__ float rcp_approx(float x)
{
#if defined(__CUDA_ARCH__)
    float y;
    asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
#else
    return flush_subnormal(1.0f / flush_subnormal(x));
#endif
}

__device__ float atan11(float x)
{
    const float a = fabsf(x);
    const float r = a > 1.0f ? 1.0f / a : a;
    const float s = r * r;
    const float p = fmaf(fmaf(s, bits_float(0xBF52C7EAu), bits_float(0xC0B59883u)), s, bits_float(0xC0D21907u));
    const float t = r * (s * p);
    float q = fmaf(s + bits_float(0x41355DC0u), s, bits_float(0x41E6BD60u));
    q = fmaf(q, s, bits_float(0x419D92C8u));
    float result = fmaf(t, 1.0f / q, r);
    if (a > 1.0f)
    {
        result = bits_float(0x3FC90FDBu) - result;
    }
    return a <= F32_INF ? copysignf(result, x) : result;
}

// fma.rm.f32(t, 252, 2^23·1.5 + 1) for t in [0, 1]: the exact sum lies in [2^23, 2^24), where
// float32 steps by 1, so rounding toward −∞ is the floor of the (exact) double sum.
__device__ float exponent_step(float t)
{
    return (float)floor((double)t * 252.0 + (double)bits_float(0x4B400001u));
}

__device__ float exp11(float x)
{
    float t = fmaf(x, bits_float(0x3BBB989Du), 0.5f);
    t = t > 1.0f ? 1.0f : (t > 0.0f ? t : 0.0f);
    const float j = exponent_step(t);
    const float k = j + bits_float(0xCB40007Fu);
    const float r = fmaf(x, bits_float(0x32A57060u), fmaf(x, bits_float(0x3FB8AA3Bu), -k));
    const float scale = bits_float((unsigned int)__float_as_int(j) << 23);
    return ex2_approx(r) * scale;
}

__device__ float log11(float x)
{
    float adjust = 0.0f;
    if (x < 1.17549435e-38f)
    {
        x = x * 8388608.0f;
        adjust = -23.0f;
    }
    const unsigned int i = (unsigned int)__float_as_int(x);
    const unsigned int e_bits = (i - 0x3F2AAAABu) & 0xFF800000u;
    const float m = bits_float(i - e_bits);
    const float e = fmaf((float)(int)e_bits, bits_float(0x34000000u), adjust);
    const float f = m - 1.0f;
    const unsigned int c[8] = {0x3E1039F6u, 0xBDF8CDCCu, 0x3E0F2955u, 0xBE2AD8B9u,
                               0x3E4CED0Bu, 0xBE7FFF22u, 0x3EAAAA78u, 0xBF000000u};
    float p = fmaf(bits_float(0xBE055027u), f, bits_float(c[0]));
    for (int n = 1; n < 8; n++)
    {
        p = fmaf(p, f, bits_float(c[n]));
    }
    float result = fmaf(e, bits_float(0x3F317218u), fmaf(f * p, f, f));
    if (i >= 0x7F800000u)
    {
        result = fmaf(x, F32_INF, F32_INF);
    }
    return x == 0.0f ? -F32_INF : result;
}

__device__ float tanh11(float x)
{
    const float a = fabsf(x);
    if (a >= bits_float(0x3F19999Au))
    {
        const float e = ex2_approx(a * bits_float(0x4038AA3Bu));
        const float t = a >= bits_float(0x41102CB4u) ? 1.0f : fmaf(rcp_approx(e + 1.0f), -2.0f, 1.0f);
        return copysignf(t, x);
    }
    const float s = x * x;
    float p = fmaf(bits_float(0x3C80F082u), s, bits_float(0xBD563CAEu));
    p = fmaf(p, s, bits_float(0x3E085941u));
    p = fmaf(p, s, bits_float(0xBEAAA9EDu));
    p = fmaf(p, s, 0.0f);
    return fmaf(p, x, x);
}

// ---------------------------------------------------------------------------------------------
// Activations (engine.md §2): value and derivative at the pre-activation a, rounded as the
// original's compiled act_fun_gpu / act_fun_diff_gpu (engine/activations.py alike).

__device__ float act_value(float a, i64 kind)
{
    switch (kind)
    {
    case 0:
        return a;
    case 1:
        return (float)(1.0 / (1.0 + (double)exp11(-a)));
    case 2:
        return tanh11(a);
    case 3:
        return a > 0.0f ? a : 0.0f;
    case 4:
        return (float)((double)a / (1.0 + (double)exp11(-a)));
    case 6:
        return (float)(1.0 - (double)a);
    case 7:
        return (float)(1.0 / (double)a);
    case 8:
        return cosf(a);
    case 9:
        return atan11(a);
    case 10:
        return a > 0.0f ? a : (float)(0.1 * ((double)exp11(a) - 1.0));
    case 11:
        return log11(sqrtf(fmaf(a, a, 1.0f)) + a);      // nvcc narrows a·a + 1.0 and fuses it
    default:
        return 0.0f;
    }
}

__device__ float act_derivative(float a, i64 kind)
{
    switch (kind)
    {
    case 0:
        return 1.0f;
    case 1:
    {
        const double s = (double)act_value(a, 1);
        return (float)(s * (1.0 - s));
    }
    case 2:
    {
        const float t = tanh11(a);
        return fmaf(-t, t, 1.0f);                        // 1.0 − t·t, narrowed and fused
    }
    case 3:
        return a > 0.0f ? 1.0f : 0.0f;
    case 4:
    {
        const float e = exp11(-a);
        const float base = (float)(1.0 + (double)e);
        return (float)(((1.0 + (double)e) + (double)(a * e)) / (double)(base * base));
    }
    case 6:
        return -1.0f;
    case 7:
        return (float)(-1.0 / (double)(a * a));
    case 8:
        return -sinf(a);
    case 9:
        return (float)(1.0 / (1.0 + (double)(a * a)));
    case 10:
        return a > 0.0f ? 1.0f : (float)(0.1 * (double)exp11(a));
    case 11:
        return (float)(1.0 / (double)sqrtf(fmaf(a, a, 1.0f)));
    default:
        return 0.0f;
    }
}

__device__ i64 thread_index()
{
    return (i64)blockIdx.x * blockDim.x + threadIdx.x;
}

// Gradient clipping as the original: above θ → θ, then below −θ → −θ (NaN passes through).
__device__ float clip(float g, float threshold)
{
    if (g > threshold)
    {
        g = threshold;
    }
    if (g < -threshold)
    {
        g = -threshold;
    }
    return g;
}

// fma chain over the parents of slot k (ascending edge index): Σ w_e·y_src(e) of sample row y.
__device__ float parent_sum(const float *y_row, const float *weight_trans, const i64 *graph_p,
                            const i64 *parent_number, const i64 *first_ind_parent, i64 k)
{
    float s = 0.0f;
    const i64 start = first_ind_parent[k];
    for (i64 p = 0; p < parent_number[k]; p++)
    {
        s = fmaf(weight_trans[start + p], y_row[graph_p[start + p]], s);
    }
    return s;
}

// ---------------------------------------------------------------------------------------------
// Forward pass (engine.md §1.1, §3, §4)

// weight_trans[p] = weight[parent_edge[p]]: the pure permutation copy of weight_transpose_gpu.
extern "C" __global__ void gather_weights(const float *weight, const i64 *parent_edge, float *weight_trans, i64 edges)
{
    const i64 p = thread_index();
    if (p < edges)
    {
        weight_trans[p] = weight[parent_edge[p]];
    }
}

// a = x̂ (data column data_column[k] in the slots that take data, 0 elsewhere), plus the bias
// when add_bias is set (ff path: bias added up front, (x̂ + b)).
extern "C" __global__ void init_inputs(float *a, const float *x, const i64 *data_column, const float *bias,
                                       i64 add_bias, i64 rows, i64 slots, i64 input_num)
{
    const i64 idx = thread_index();
    if (idx < rows * slots)
    {
        const i64 d = idx / slots, k = idx % slots;
        const i64 col = data_column[k];
        float value = col >= 0 ? x[d * input_num + col] : 0.0f;
        if (add_bias)
        {
            value = value + bias[k];
        }
        a[idx] = value;
    }
}

// y[d,i] = Π_j f(a[d, ob[i]+j]) in input order, for neurons below neuron_limit (the original's
// launch coverage, §14) and, when level >= 0, only those with dist[i] == level.
extern "C" __global__ void neuron_values(const float *a, float *y, const i64 *bias_number, const i64 *first_ind_bias,
                                         const i64 *activation_type, const i64 *dist, i64 level,
                                         const int *active, i64 batch, i64 rows, i64 neurons, i64 slots,
                                         i64 neuron_limit)
{
    const i64 idx = thread_index();
    if (idx >= rows * neurons)
    {
        return;
    }
    const i64 d = idx / neurons, i = idx % neurons;
    if (i >= neuron_limit || (level >= 0 && dist[i] != level) || !active[d / batch])
    {
        return;
    }
    const i64 start = d * slots + first_ind_bias[i];
    const i64 first = first_ind_bias[i];
    float value = 1.0f;
    for (i64 j = 0; j < bias_number[i]; j++)
    {
        value = value * act_value(a[start + j], activation_type[first + j]);
    }
    y[idx] = value;
}

// One implicit iteration for the slots: a_new = (x̂ + Σ w·y) + b, two float adds in that order
// (§3.1); diff = |a_new − a_old| for the chunk's max-norm.
extern "C" __global__ void implicit_inputs(float *a, float *diff, const float *x, const i64 *data_column,
                                           const float *y, const float *weight_trans, const i64 *graph_p,
                                           const i64 *parent_number, const i64 *first_ind_parent, const float *bias,
                                           const int *active, i64 batch, i64 rows, i64 neurons, i64 slots,
                                           i64 input_num)
{
    const i64 idx = thread_index();
    if (idx >= rows * slots)
    {
        return;
    }
    const i64 d = idx / slots, k = idx % slots;
    if (!active[d / batch])
    {
        return;
    }
    const i64 col = data_column[k];
    const float x_hat = col >= 0 ? x[d * input_num + col] : 0.0f;
    const float s = parent_sum(y + d * neurons, weight_trans, graph_p, parent_number, first_ind_parent, k);
    float value = x_hat + s;
    value = value + bias[k];
    diff[idx] = fabsf(value - a[idx]);
    a[idx] = value;
}

// ff path: slots at PERT level `level` receive their parent sum, a += Σ w·y (§4.2).
extern "C" __global__ void ff_inputs(float *a, const float *y, const float *weight_trans, const i64 *graph_p,
                                     const i64 *parent_number, const i64 *first_ind_parent, const i64 *dist_input,
                                     i64 level, i64 rows, i64 neurons, i64 slots)
{
    const i64 idx = thread_index();
    if (idx >= rows * slots)
    {
        return;
    }
    const i64 d = idx / slots, k = idx % slots;
    if (dist_input[k] != level)
    {
        return;
    }
    a[idx] = a[idx] + parent_sum(y + d * neurons, weight_trans, graph_p, parent_number, first_ind_parent, k);
}

// ---------------------------------------------------------------------------------------------
// Stop tests on the device: per-chunk max-norm, then the active flags and their count.

// out[c] = max |v| over the entries of chunk c (rows c*batch .. (c+1)*batch−1, `width` entries each),
// ignoring NaN and NaN only if every entry is NaN (engine.md §13.3). Inactive chunks are skipped.
// One block per chunk.
extern "C" __global__ void max_abs_chunks(const float *v, float *out, const int *active, i64 batch, i64 rows,
                                          i64 width)
{
    __shared__ float partial[THREADS];
    const i64 c = blockIdx.x;
    if (!active[c])
    {
        return;
    }
    const i64 first = c * batch * width;
    const i64 last_row = (c + 1) * batch < rows ? (c + 1) * batch : rows;
    const i64 last = last_row * width;
    float m = __int_as_float(0x7fffffff);
    for (i64 j = first + threadIdx.x; j < last; j += blockDim.x)
    {
        m = fmaxf(m, fabsf(v[j]));
    }
    partial[threadIdx.x] = m;
    __syncthreads();
    for (unsigned int half = blockDim.x / 2; half > 0; half /= 2)
    {
        if (threadIdx.x < half)
        {
            partial[threadIdx.x] = fmaxf(partial[threadIdx.x], partial[threadIdx.x + half]);
        }
        __syncthreads();
    }
    if (threadIdx.x == 0)
    {
        out[c] = partial[0];
    }
}

// After a sweep: each active chunk counts it in sweeps[c] and stays active while err > tol (NaN
// stops it, as `err > tol` does in the original); count[0] = number of chunks still active. One block.
extern "C" __global__ void update_active(const float *err, int *active, int *count, i64 *sweeps, i64 chunks,
                                         float tol)
{
    __shared__ int partial[THREADS];
    int alive = 0;
    for (i64 c = threadIdx.x; c < chunks; c += blockDim.x)
    {
        if (active[c])
        {
            sweeps[c] += 1;
            if (!(err[c] > tol))
            {
                active[c] = 0;
            }
        }
        alive += active[c];
    }
    partial[threadIdx.x] = alive;
    __syncthreads();
    for (unsigned int half = blockDim.x / 2; half > 0; half /= 2)
    {
        if (threadIdx.x < half)
        {
            partial[threadIdx.x] += partial[threadIdx.x + half];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0)
    {
        count[0] = partial[0];
    }
}

// ---------------------------------------------------------------------------------------------
// Local derivatives and the adjoint (engine.md §5, §7, §8)

// h[d,k] = f'(a_k) · Π_{l≠j} f(a_l) over the neuron's inputs in order (calc_grad_help_0/_gpu).
extern "C" __global__ void local_derivatives(const float *a, float *h, const i64 *bias_number,
                                             const i64 *first_ind_bias, const i64 *activation_type, i64 rows,
                                             i64 neurons, i64 slots, i64 neuron_limit)
{
    const i64 idx = thread_index();
    if (idx >= rows * neurons)
    {
        return;
    }
    const i64 d = idx / neurons, i = idx % neurons;
    if (i >= neuron_limit)
    {
        return;
    }
    const i64 first = first_ind_bias[i];
    const i64 row = d * slots + first;
    const i64 count = bias_number[i];
    for (i64 j = 0; j < count; j++)
    {
        float value = act_derivative(a[row + j], activation_type[first + j]);
        for (i64 l = 0; l < count; l++)
        {
            if (l != j)
            {
                value = value * act_value(a[row + l], activation_type[first + l]);
            }
        }
        h[row + j] = value;
    }
}

// One adjoint sweep for neuron i (all neurons, or those with dist[i] == level when level >= 0):
// s = fma chain over out-edges (file order) of w_e·t_old[tgt(e)]; for its slots
// t_new = s·h (when write_increment) and d_acc = fma(s, h, d_acc).
extern "C" __global__ void adjoint_step(float *d_acc, float *t_new, const float *t_old, const float *h,
                                        const float *weight, const i64 *edge_target, const i64 *first_ind_neighbour,
                                        const i64 *neighbour_number, const i64 *first_ind_bias,
                                        const i64 *bias_number, const i64 *dist, i64 level, i64 write_increment,
                                        i64 rows, i64 neurons, i64 slots, i64 neuron_limit)
{
    const i64 idx = thread_index();
    if (idx >= rows * neurons)
    {
        return;
    }
    const i64 d = idx / neurons, i = idx % neurons;
    if (i >= neuron_limit || (level >= 0 && dist[i] != level))
    {
        return;
    }
    const float *old_row = t_old + d * slots;
    const i64 first_edge = first_ind_neighbour[i];
    float s = 0.0f;
    for (i64 c = 0; c < neighbour_number[i]; c++)
    {
        s = fmaf(weight[first_edge + c], old_row[edge_target[first_edge + c]], s);
    }
    const i64 row = d * slots + first_ind_bias[i];
    for (i64 j = 0; j < bias_number[i]; j++)
    {
        if (write_increment)
        {
            t_new[row + j] = s * h[row + j];
        }
        d_acc[row + j] = fmaf(s, h[row + j], d_acc[row + j]);
    }
}

// ---------------------------------------------------------------------------------------------
// Gradient assembly (engine.md §9 steps 2-6), one thread per edge / slot.

// G_w[e] = (Σ_d fma-chain δ[d,tgt(e)]·y[d,src(e)]) / B + 2·alpha·w_e, then clipped. Sources at or
// beyond source_limit get no loss gradient (the original's launch coverage, §14).
extern "C" __global__ void weight_gradient(float *grad, const float *d_acc, const float *y, const float *weight,
                                           const i64 *edge_source, const i64 *edge_target, i64 edges, i64 rows,
                                           i64 neurons, i64 slots, i64 source_limit, float alpha, i64 clipping,
                                           float threshold)
{
    const i64 e = thread_index();
    if (e >= edges)
    {
        return;
    }
    const i64 src = edge_source[e], tgt = edge_target[e];
    float g = 0.0f;
    if (src < source_limit)
    {
        for (i64 d = 0; d < rows; d++)
        {
            g = fmaf(d_acc[d * slots + tgt], y[d * neurons + src], g);
        }
    }
    g = g / (float)rows;
    g = (float)fma(2.0 * (double)alpha, (double)weight[e], (double)g);   // DFMA
    grad[e] = clipping == 1 ? clip(g, threshold) : g;
}

// G_b[k] = (Σ_d δ[d,k]) / B (float adds in sample order), then clipped; no regularisation.
extern "C" __global__ void bias_gradient(float *grad, const float *d_acc, i64 rows, i64 slots, i64 clipping,
                                         float threshold)
{
    const i64 k = thread_index();
    if (k >= slots)
    {
        return;
    }
    float g = 0.0f;
    for (i64 d = 0; d < rows; d++)
    {
        g += d_acc[d * slots + k];
    }
    g = g / (float)rows;
    grad[k] = clipping == 1 ? clip(g, threshold) : g;
}

// Shared groups (members[starts[g] .. starts[g+1]−1]): every member gets the float sum of the
// group. Launched with one thread per group when groups are disjoint, with one thread otherwise
// (then the groups run in file order, as on the original's host).
extern "C" __global__ void group_sums(float *grad, const i64 *members, const i64 *starts, i64 groups)
{
    const i64 stride = (i64)gridDim.x * blockDim.x;
    for (i64 g = thread_index(); g < groups; g += stride)
    {
        float s = 0.0f;
        for (i64 q = starts[g]; q < starts[g + 1]; q++)
        {
            s = s + grad[members[q]];
        }
        for (i64 q = starts[g]; q < starts[g + 1]; q++)
        {
            grad[members[q]] = s;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Optimisers (engine.md §10-11). State is updated for every entry, the parameter only where
// logic == 1. fmaf / fma exactly where the original's compiled kernels fuse (fma table).

// Nesterov look-ahead copy: out = p, plus beta1·v where trainable.
extern "C" __global__ void lookahead(float *out, const float *p, const float *v, const i64 *logic, i64 count,
                                     float beta1)
{
    const i64 i = thread_index();
    if (i < count)
    {
        out[i] = logic[i] == 1 ? fmaf(beta1, v[i], p[i]) : p[i];
    }
}

extern "C" __global__ void sgd_update(float *p, const float *g, float *v, const i64 *logic, i64 count, float lr,
                                      float beta1, i64 nesterov)
{
    const i64 i = thread_index();
    if (i < count)
    {
        const float step = lr * g[i];
        v[i] = fmaf(beta1, v[i], -step);
        if (logic[i] == 1)
        {
            p[i] = p[i] + (nesterov ? fmaf(beta1, v[i], -step) : v[i]);
        }
    }
}

extern "C" __global__ void adam_update(float *p, const float *g, float *m, float *v, const i64 *logic, i64 count,
                                       float lr, float beta1, float beta2, float beta1t, float beta2t, float eps)
{
    const i64 i = thread_index();
    if (i < count)
    {
        const double grad = (double)g[i];
        m[i] = (float)fma(1.0 - (double)beta1, grad, (double)(beta1 * m[i]));      // DFMA
        v[i] = (float)fma(grad, (1.0 - (double)beta2) * grad, (double)(beta2 * v[i]));
        const float m_hat = (float)((double)m[i] / (1.0 - (double)beta1t));
        const float v_hat = (float)((double)v[i] / (1.0 - (double)beta2t));
        if (logic[i] == 1)
        {
            p[i] = p[i] - (lr * m_hat) / (sqrtf(fabsf(v_hat)) + eps);
        }
    }
}

extern "C" __global__ void adamax_update(float *p, const float *g, float *m, float *u, const i64 *logic,
                                         i64 count, float lr, float beta1, float beta2, float beta1t, float eps)
{
    const i64 i = thread_index();
    if (i < count)
    {
        m[i] = (float)fma(1.0 - (double)beta1, (double)g[i], (double)(beta1 * m[i]));   // DFMA
        u[i] = fmaxf(beta2 * u[i], fabsf(g[i]));
        if (logic[i] == 1)
        {
            p[i] = (float)((double)p[i] - (double)lr / (1.0 - (double)beta1t) * (double)m[i] / (double)(u[i] + eps));
        }
    }
}
