/*
 * jobs_step_bench.c: where a job's step time goes, on the 784-256-10 MLP
 * at batch 64 (bench/jobs_bench.sh prints it beside the job's rate):
 *
 *   inplace   lt_model_train_step() in place on one batch (core_bench)
 *   zone      the step the zone runs: lt_model_train_step_to() from one
 *             parameter buffer into the other, alternating, then
 *             lt_model_step_check() of what it wrote
 *   zone+data the same over the job's 16384 rows of data (51 MB, more
 *             than the L3), a new batch each step, in order (a job with
 *             shuffle false steps on views of its rows)
 *   zone+gather  the same, each batch gathered from 64 rows in a
 *             Fisher-Yates order into one buffer, as a shuffled job does
 *   shm       zone+data with both buffers in MAP_SHARED memory, as a
 *             zone's are (shared memory gets no transparent huge pages
 *             where shmem_enabled is "never", Debian's default)
 *   inplace+data, inplace+gather  the in-place step on the job's rows,
 *             in order and gathered: what a job's run of steps costs
 *             between its first and last step (only the data differs
 *             from core_bench)
 *
 * So the rows a job is compared with, one at a time: inplace (the core,
 * one cached batch) -> zone (the out-of-place step and its finite check)
 * -> zone+data / zone+gather (data from DRAM) -> the job in nginx.
 *
 * Prints "NAME samples_per_s", the best of 5 runs of 0.3 s each.
 */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/mman.h>

#include <cblas.h>

#include "lt_model.h"


#define ROWS   16384
#define BATCH  64


static double
now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}


int
main(void)
{
    int            mode, run, i;
    float         *buf[2], *xs, *ys, loss;
    double         t0, best, rate;
    long           steps;
    int64_t        shape[2], step;
    lt_err         err;
    lt_model       m;
    lt_tensor      x, y;
    lt_model_spec  s;
    lt_workspace  *ws;
    const char    *names[7] = { "inplace", "zone", "zone+data",
                                  "zone+gather", "shm", "inplace+data",
                                  "inplace+gather" };
    int            data, gather, inplace;
    float         *bx;
    int64_t       *idx, j, tmp;
    float         *heap[2], *shm;
    size_t         bytes;

    openblas_set_num_threads(1);

    memset(&s, 0, sizeof(s));
    s.nlayers = 3;
    s.layers[0].kind = LT_LAYER_LINEAR;
    s.layers[0].in = 784;
    s.layers[0].out = 256;
    s.layers[1].kind = LT_LAYER_RELU;
    s.layers[2].kind = LT_LAYER_LINEAR;
    s.layers[2].in = 256;
    s.layers[2].out = 10;
    s.loss = LT_LOSS_CE;
    s.optim.kind = LT_OPTIM_SGD;
    s.optim.lr = 0.01f;

    if (lt_model_build(&m, &s, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }

    ws = lt_workspace_new(&m, lt_backend_cpu(), BATCH, &err);
    buf[0] = malloc((m.param_count + m.state_count + 1) * sizeof(float));
    buf[1] = malloc((m.param_count + m.state_count + 1) * sizeof(float));
    xs = malloc((size_t) ROWS * 784 * sizeof(float));
    ys = malloc((size_t) ROWS * sizeof(float));
    if (ws == NULL || !buf[0] || !buf[1] || !xs || !ys) {
        return 1;
    }

    lt_model_init_params(&m, buf[0], 1);
    memcpy(buf[1], buf[0], m.param_count * sizeof(float));

    bytes = (m.param_count + m.state_count + 1) * sizeof(float);
    shm = mmap(NULL, 2 * bytes, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shm == MAP_FAILED) {
        return 1;
    }
    memcpy(shm, buf[0], bytes);
    memcpy((char *) shm + bytes, buf[0], bytes);
    heap[0] = buf[0];
    heap[1] = buf[1];

    bx = malloc((size_t) BATCH * 784 * sizeof(float));
    idx = malloc((size_t) ROWS * sizeof(int64_t));
    if (bx == NULL || idx == NULL) {
        return 1;
    }

    srand(1);
    for (i = 0; i < ROWS; i++) {
        idx[i] = i;
    }
    for (i = ROWS - 1; i > 0; i--) {
        j = rand() % (i + 1);
        tmp = idx[i];
        idx[i] = idx[j];
        idx[j] = tmp;
    }

    for (i = 0; i < ROWS * 784; i++) {
        xs[i] = (float) rand() / (float) RAND_MAX;
    }
    for (i = 0; i < ROWS; i++) {
        ys[i] = (float) (rand() % 10);
    }

    for (mode = 0; mode < 7; mode++) {
        best = 0;
        step = 0;
        data = (mode >= 2);
        gather = (mode == 3 || mode == 6);
        inplace = (mode == 0 || mode >= 5);

        buf[0] = (mode == 4) ? shm : heap[0];
        buf[1] = (mode == 4) ? (float *) ((char *) shm + bytes) : heap[1];

        for (run = 0; run < 5; run++) {
            steps = 0;
            t0 = now();

            while (now() - t0 < 0.3) {
                int64_t  row = data ? (steps * BATCH) % ROWS : 0;
                int      a = (int) (step & 1);

                shape[0] = BATCH;
                shape[1] = 784;
                lt_tensor_view(&x, xs + row * 784, 2, shape);
                lt_tensor_view(&y, ys + row, 1, shape);

                if (gather) {
                    for (i = 0; i < BATCH; i++) {
                        memcpy(bx + i * 784, xs + idx[row + i] * 784,
                               784 * sizeof(float));
                    }
                    lt_tensor_view(&x, bx, 2, shape);
                }
                step++;

                if (inplace) {
                    if (lt_model_train_step(&m, ws, buf[0], buf[0],
                                            buf[0] + m.param_count, step,
                                            &x, &y, &loss, &err) != 0)
                    {
                        return 1;
                    }

                } else if (lt_model_train_step_to(&m, ws, buf[a], buf[1 - a],
                                                  buf[a] + m.param_count,
                                                  buf[1 - a] + m.param_count,
                                                  step, &x, &y, &loss, &err)
                           != 0
                           || lt_model_step_check(&m, loss, buf[1 - a],
                                                  buf[1 - a] + m.param_count,
                                                  &err) != 0)
                {
                    return 1;
                }

                steps++;
            }

            rate = (double) steps * BATCH / (now() - t0);
            if (rate > best) {
                best = rate;
            }
        }

        printf("%s %.0f\n", names[mode], best);
    }

    return 0;
}
