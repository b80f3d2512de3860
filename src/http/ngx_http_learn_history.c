
/*
 * A model's loss history and counter samples (ngx_http_learn_history.h):
 * recorded in its zone, read by learn_status for the JSON and the page.
 */


#include "ngx_http_learn.h"


/* lock-free copies give up after this many races with a writer */
#define NGX_HTTP_LEARN_HISTORY_TRIES  1024


/*
 * The train step, under the model's mutex, after the step is checked
 * and before it is published: a modulo for most steps, two stores and
 * two barriers for a kept one, and a pass over the array when it fills.
 */

void
ngx_http_learn_history_add(ngx_http_learn_history_t *h, int64_t step,
    float loss)
{
    ngx_uint_t  i, j;
    uint64_t    stride;

    stride = h->stride ? h->stride : 1;

    if (step <= 0 || (uint64_t) step % stride) {
        return;
    }

    h->gen++;
    ngx_memory_barrier();

    if (h->n >= NGX_HTTP_LEARN_HISTORY) {
        stride *= 2;

        for (i = 0, j = 0; i < NGX_HTTP_LEARN_HISTORY; i++) {
            if ((uint64_t) h->point[i].step % stride == 0) {
                h->point[j++] = h->point[i];
            }
        }

        h->n = j;
        h->stride = stride;
    }

    if ((uint64_t) step % stride == 0 && h->n < NGX_HTTP_LEARN_HISTORY) {
        h->point[h->n].step = step;
        h->point[h->n].loss = loss;
        h->n++;
    }

    ngx_memory_barrier();
    h->gen++;
}


/*
 * A consistent copy into out (NGX_HTTP_LEARN_HISTORY points), oldest
 * first; returns the number of points.  A step's write lasts a few
 * stores, so a copy that raced one is redone at once.
 */

ngx_uint_t
ngx_http_learn_history_read(ngx_http_learn_history_t *h,
    ngx_http_learn_point_t *out, uint64_t *stride)
{
    ngx_uint_t         n, i;
    ngx_atomic_uint_t  gen;

    for (i = 0; i < NGX_HTTP_LEARN_HISTORY_TRIES; i++) {
        gen = h->gen;
        ngx_memory_barrier();

        if (gen & 1) {
            ngx_cpu_pause();
            continue;
        }

        n = ngx_min(h->n, NGX_HTTP_LEARN_HISTORY);
        ngx_memcpy(out, h->point, n * sizeof(ngx_http_learn_point_t));
        *stride = h->stride ? h->stride : 1;

        ngx_memory_barrier();

        if (h->gen == gen) {
            return n;
        }
    }

    *stride = 1;

    return 0;
}


/*
 * ", \"loss_history\": [[STEP, LOSS], ...], \"loss_history_stride\": K":
 * the losses are formatted as the "loss" key is (lt_json_float, %.9g)
 */

u_char *
ngx_http_learn_history_json(u_char *p, ngx_http_learn_history_t *h)
{
    int                      len;
    uint64_t                 stride;
    ngx_uint_t               i, n;
    ngx_http_learn_point_t   pts[NGX_HTTP_LEARN_HISTORY];

    n = ngx_http_learn_history_read(h, pts, &stride);

    p = ngx_cpymem(p, ", \"loss_history\": [",
                   sizeof(", \"loss_history\": [") - 1);

    for (i = 0; i < n; i++) {
        p = ngx_sprintf(p, "%s[%L, ", i ? ", " : "", pts[i].step);

        len = lt_json_float((char *) p, 32, pts[i].loss);
        p += (len > 0 && len < 32) ? len : 0;

        *p++ = ']';
    }

    return ngx_sprintf(p, "], \"loss_history_stride\": %uL", stride);
}


/* wall clock in ms, as this process last read it (no syscall) */

ngx_msec_t
ngx_http_learn_samples_now(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (ngx_msec_t) tp->sec * 1000 + tp->msec;
}


/*
 * learn_status was read: keep the counters if the newest sample is at
 * least NGX_HTTP_LEARN_RATE_MIN_MS old.  One writer at a time (another
 * worker reading status meanwhile skips); a slot's msec is zeroed while
 * it is written, so a reader never takes half a sample.
 */

void
ngx_http_learn_samples_take(ngx_http_learn_samples_t *s, ngx_msec_t now,
    const ngx_http_learn_sample_t *current)
{
    ngx_atomic_uint_t         last;
    ngx_http_learn_sample_t  *slot;

    last = s->sample[(s->next + NGX_HTTP_LEARN_SAMPLES - 1)
                     % NGX_HTTP_LEARN_SAMPLES].msec;

    if (last && now >= last && now - last < NGX_HTTP_LEARN_RATE_MIN_MS) {
        return;
    }

    if (!ngx_atomic_cmp_set(&s->lock, 0, 1)) {
        return;
    }

    slot = &s->sample[s->next % NGX_HTTP_LEARN_SAMPLES];

    slot->msec = 0;
    ngx_memory_barrier();

    slot->trains = current->trains;
    slot->predicts = current->predicts;
    slot->rejects = current->rejects;

    ngx_memory_barrier();
    slot->msec = now ? now : 1;

    s->next = (s->next + 1) % NGX_HTTP_LEARN_SAMPLES;

    ngx_memory_barrier();
    s->lock = 0;
}


/*
 * Per second, from the oldest sample of the last minute that is at least
 * a second old to the current counters; window_ms 0 when there is none
 * (the first look, or no look for a minute).
 */

void
ngx_http_learn_samples_rate(ngx_http_learn_samples_t *s, ngx_msec_t now,
    const ngx_http_learn_sample_t *current, ngx_http_learn_rate_t *rate)
{
    double                    sec;
    ngx_uint_t                i;
    ngx_msec_t                age, best;
    ngx_http_learn_sample_t   copy, *slot;

    ngx_memzero(rate, sizeof(ngx_http_learn_rate_t));

    best = 0;

    for (i = 0; i < NGX_HTTP_LEARN_SAMPLES; i++) {
        slot = &s->sample[i];

        copy.msec = slot->msec;
        ngx_memory_barrier();
        copy.trains = slot->trains;
        copy.predicts = slot->predicts;
        copy.rejects = slot->rejects;
        ngx_memory_barrier();

        if (copy.msec == 0 || copy.msec != slot->msec || copy.msec > now) {
            continue;
        }

        age = now - copy.msec;

        if (age < NGX_HTTP_LEARN_RATE_MIN_MS
            || age > NGX_HTTP_LEARN_RATE_MAX_MS
            || age <= best
            || copy.trains > current->trains
            || copy.predicts > current->predicts
            || copy.rejects > current->rejects)
        {
            continue;
        }

        best = age;
        sec = age / 1000.0;

        rate->window_ms = age;
        rate->trains = (current->trains - copy.trains) / sec;
        rate->predicts = (current->predicts - copy.predicts) / sec;
        rate->rejects = (current->rejects - copy.rejects) / sec;
    }
}
