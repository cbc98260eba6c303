// CUDA kernels of the GPU engine (implicit_nn/engine/gpu.py loads them with cupy.RawModule).
//
// Numerics follow ../shared/spec/engine.md: float32 everywhere, float64 exactly where the original's
// expressions contain double literals (§13.2), fused multiply-adds where the original's "x += a*b"
// accumulations are contracted (written here as explicit fmaf), no fast math (§13.1).
// Layout: every per-sample buffer is sample-major (element (d, j) of a row of length R at d*R + j).
// Index arrays are int64 (numpy's default), counts are passed as long long.
//
// Batched prediction: `batch` rows form one minibatch ("chunk") and `active[chunk]` freezes a chunk
// once its own fixed-point test has stopped it, so many minibatches can iterate side by side while
// each runs exactly the iterations it would run alone (engine.md §3.3, §12).

typedef long long i64;

#define THREADS 256

// ---------------------------------------------------------------------------------------------
// Activations (engine.md §2): value and derivative at the pre-activation a.

__device__ float act_value(float a, i64 kind)
{
    switch (kind)
    {
    case 0:
        return a;
    case 1:
        return (float)(1.0 / (1.0 + (double)expf(-a)));
    case 2:
        return tanhf(a);
    case 3:
        return a > 0.0f ? a : 0.0f;
    case 4:
        return (float)((double)a / (1.0 + (double)expf(-a)));
    case 6:
        return (float)(1.0 - (double)a);
    case 7:
        return (float)(1.0 / (double)a);
    case 8:
        return cosf(a);
    case 9:
        return atanf(a);
    case 10:
        return a > 0.0f ? a : (float)(0.1 * ((double)expf(a) - 1.0));
    case 11:
        return logf(sqrtf((float)((double)(a * a) + 1.0)) + a);
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
        return (float)((double)act_value(a, 1) * (1.0 - (double)act_value(a, 1)));
    case 2:
        return (float)(1.0 - (double)(tanhf(a) * tanhf(a)));
    case 3:
        return a > 0.0f ? 1.0f : 0.0f;
    case 4:
        return (float)(((1.0 + (double)expf(-a)) + (double)(a * expf(-a))) /
                       (double)powf((float)(1.0 + (double)expf(-a)), 2.0f));
    case 6:
        return -1.0f;
    case 7:
        return (float)(-1.0 / (double)powf(a, 2.0f));
    case 8:
        return -sinf(a);
    case 9:
        return (float)(1.0 / (1.0 + (double)(a * a)));
    case 10:
        return a > 0.0f ? 1.0f : (float)(0.1 * (double)expf(a));
    case 11:
        return (float)(1.0 / (double)sqrtf((float)((double)(a * a) + 1.0)));
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
    g += 2.0 * alpha * weight[e];
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
// logic == 1. Statements keep the original's shape so that the compiler contracts them alike.

// Nesterov look-ahead copy: out = p, plus beta1·v where trainable.
extern "C" __global__ void lookahead(float *out, const float *p, const float *v, const i64 *logic, i64 count,
                                     float beta1)
{
    const i64 i = thread_index();
    if (i < count)
    {
        out[i] = p[i];
        if (logic[i] == 1)
        {
            out[i] += beta1 * v[i];
        }
    }
}

extern "C" __global__ void sgd_update(float *p, const float *g, float *v, const i64 *logic, i64 count, float lr,
                                      float beta1, i64 nesterov)
{
    const i64 i = thread_index();
    if (i < count)
    {
        v[i] = beta1 * v[i] - lr * g[i];
        if (logic[i] == 1)
        {
            if (nesterov)
            {
                p[i] += beta1 * v[i] - lr * g[i];
            }
            else
            {
                p[i] += v[i];
            }
        }
    }
}

extern "C" __global__ void adam_update(float *p, const float *g, float *m, float *v, const i64 *logic, i64 count,
                                       float lr, float beta1, float beta2, float beta1t, float beta2t, float eps)
{
    const i64 i = thread_index();
    if (i < count)
    {
        m[i] = beta1 * m[i] + (1.0 - beta1) * g[i];
        v[i] = beta2 * v[i] + (1.0 - beta2) * g[i] * g[i];
        const float m_hat = m[i] / (1.0 - beta1t);
        const float v_hat = v[i] / (1.0 - beta2t);
        if (logic[i] == 1)
        {
            p[i] -= lr * m_hat / (sqrtf(fabsf(v_hat)) + eps);
        }
    }
}

extern "C" __global__ void adamax_update(float *p, const float *g, float *m, float *u, const i64 *logic,
                                         i64 count, float lr, float beta1, float beta2, float beta1t, float eps)
{
    const i64 i = thread_index();
    if (i < count)
    {
        m[i] = beta1 * m[i] + (1.0 - beta1) * g[i];
        u[i] = fmaxf(beta2 * u[i], fabsf(g[i]));
        if (logic[i] == 1)
        {
            p[i] -= lr / (1.0 - beta1t) * m[i] / (u[i] + eps);
        }
    }
}
