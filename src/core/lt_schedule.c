/*
 * lt_schedule.c: learning rate schedules of torch.optim.lr_scheduler,
 * stepped once per optimizer step, in closed form.
 *
 * The rate is a function of the optimizer's step count alone, which the
 * zone, checkpoints and versions already keep (optim_step): a restored
 * model continues its schedule exactly, and there is no other schedule
 * state to store.  PyTorch's schedulers update the rate recursively; the
 * closed forms below are the ones PyTorch documents for each (and uses
 * itself when stepped with an epoch), equal up to rounding.
 */
#include <math.h>

#include "lt_optim.h"

#define LT_SCHED_MAX_STEPS  ((int64_t) 1 << 53)
#define LT_PI               3.14159265358979323846


static const char *
lt_sched_name(lt_sched_kind kind)
{
    switch (kind) {
    case LT_SCHED_STEP:        return "StepLR";
    case LT_SCHED_MULTISTEP:   return "MultiStepLR";
    case LT_SCHED_EXPONENTIAL: return "ExponentialLR";
    case LT_SCHED_LINEAR:      return "LinearLR";
    case LT_SCHED_COSINE:      return "CosineAnnealingLR";
    default:                   return "the constant rate";
    }
}


static int
lt_sched_count(const char *name, const char *what, int64_t v, lt_err *err)
{
    if (v < 1 || v > LT_SCHED_MAX_STEPS) {
        return lt_error(err, "%s: %s must be a positive integer, got %lld",
                        name, what, (long long) v);
    }

    return 0;
}


static int
lt_sched_number(const char *name, const char *what, double v, double lo,
    double hi, int lo_open, lt_err *err)
{
    if (!(v >= lo && v <= hi) || (lo_open && v == lo)) {
        return lt_error(err, "%s: %s must be in %s%g, %g], got %g", name,
                        what, lo_open ? "(" : "[", lo, hi, v);
    }

    return 0;
}


static int
lt_sched_phase_check(const lt_sched_phase *p, lt_err *err)
{
    const char  *name;
    int          i;

    name = lt_sched_name(p->kind);

    switch (p->kind) {

    case LT_SCHED_STEP:
        return lt_sched_count(name, "step_size", p->step_size, err)
               || lt_sched_number(name, "gamma", p->gamma, 0, 1e6, 0, err);

    case LT_SCHED_MULTISTEP:
        if (p->nmilestones < 1 || p->nmilestones > LT_MAX_MILESTONES) {
            return lt_error(err, "%s: 1 to %d milestones, not %d", name,
                            LT_MAX_MILESTONES, p->nmilestones);
        }

        for (i = 0; i < p->nmilestones; i++) {
            if (lt_sched_count(name, "a milestone", p->milestones[i], err)) {
                return -1;
            }

            if (i > 0 && p->milestones[i] < p->milestones[i - 1]) {
                return lt_error(err, "%s: milestones must be in increasing"
                                " order", name);
            }
        }

        return lt_sched_number(name, "gamma", p->gamma, 0, 1e6, 0, err);

    case LT_SCHED_EXPONENTIAL:
        return lt_sched_number(name, "gamma", p->gamma, 0, 1e6, 0, err);

    case LT_SCHED_LINEAR:
        return lt_sched_number(name, "start_factor", p->start_factor, 0, 1,
                               1, err)
               || lt_sched_number(name, "end_factor", p->end_factor, 0, 1, 0,
                                  err)
               || lt_sched_count(name, "total_iters", p->step_size, err);

    case LT_SCHED_COSINE:
        return lt_sched_count(name, "T_max", p->step_size, err)
               || lt_sched_number(name, "eta_min", p->eta_min, 0, 1e6, 0,
                                  err);

    default:
        return lt_error(err, "unknown schedule kind %d", (int) p->kind);
    }
}


int
lt_schedule_check(const lt_schedule_spec *s, lt_err *err)
{
    int  i;

    if (s->nphases < 0 || s->nphases > LT_MAX_SCHED) {
        return lt_error(err, "a schedule has 0 to %d phases, not %d",
                        LT_MAX_SCHED, s->nphases);
    }

    for (i = 0; i < s->nphases; i++) {
        if (lt_sched_phase_check(&s->phases[i], err) != 0) {
            return -1;
        }
    }

    for (i = 0; i + 1 < s->nphases; i++) {
        if (lt_sched_count("SequentialLR", "a milestone", s->milestones[i],
                           err))
        {
            return -1;
        }

        if (i > 0 && s->milestones[i] <= s->milestones[i - 1]) {
            return lt_error(err, "SequentialLR: milestones must be in "
                            "increasing order");
        }
    }

    return 0;
}


/* The rate after e steps of one scheduler started at base. */
static double
lt_sched_phase_lr(const lt_sched_phase *p, double base, int64_t e)
{
    double  f;
    int     i, k;

    switch (p->kind) {

    case LT_SCHED_STEP:
        return base * pow(p->gamma, (double) (e / p->step_size));

    case LT_SCHED_MULTISTEP:
        /* bisect_right: a milestone counts from its own step on */
        for (i = 0, k = 0; i < p->nmilestones; i++) {
            k += p->milestones[i] <= e;
        }
        return base * pow(p->gamma, (double) k);

    case LT_SCHED_EXPONENTIAL:
        return base * pow(p->gamma, (double) e);

    case LT_SCHED_LINEAR:
        f = e < p->step_size ? (double) e / (double) p->step_size : 1.0;
        return base * (p->start_factor + (p->end_factor - p->start_factor)
                                         * f);

    case LT_SCHED_COSINE:
        return p->eta_min + (base - p->eta_min)
               * (1.0 + cos(LT_PI * (double) e / (double) p->step_size)) / 2;

    default:
        return base;
    }
}


/*
 * SequentialLR: after milestone k the (k+1)-th scheduler runs, counting
 * its own steps from that milestone, from the optimizer's initial rate.
 */
double
lt_schedule_lr(const lt_model_spec *s, int64_t step)
{
    const lt_schedule_spec  *sc;
    int64_t                  t, from;
    int                      i;

    sc = &s->schedule;
    t = step > 1 ? step - 1 : 0;

    if (sc->nphases == 0) {
        return s->optim.lr;
    }

    for (i = 0, from = 0; i + 1 < sc->nphases && t >= sc->milestones[i];
         i++)
    {
        from = sc->milestones[i];
    }

    return lt_sched_phase_lr(&sc->phases[i], s->optim.lr, t - from);
}


float
lt_model_lr(const lt_model *m, int64_t steps_done)
{
    return (float) lt_schedule_lr(&m->spec, steps_done + 1);
}
