/*
 * tap.h: a tiny Test Anything Protocol helper for the C unit tests.
 *
 * Header-only so each test is one .c file.  Output follows TAP 13 as prove
 * reads it: "ok N - name" / "not ok N - name", diagnostics on "# " lines
 * (stderr for failures so they show up without -v) and the plan printed at
 * the end by done_testing().
 *
 *     #include "tap.h"
 *     int main(void) {
 *         ok(1 + 1 == 2, "adds");
 *         is_int(3, 3, "three");
 *         is_float(0.1f + 0.2f, 0.3, 1e-6, "close enough");
 *         return done_testing();
 *     }
 */
#ifndef LT_TAP_H
#define LT_TAP_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int  tap_run;
static int  tap_failed;

#if defined(__GNUC__)
#define TAP_PRINTF(a, b)  __attribute__((format(printf, a, b)))
#define TAP_UNUSED        __attribute__((unused))
#else
#define TAP_PRINTF(a, b)
#define TAP_UNUSED
#endif


/* Prints one "# ..." line to stdout (visible with prove -v). */
static TAP_UNUSED TAP_PRINTF(1, 2) void
diag(const char *fmt, ...)
{
    va_list  ap;

    fputs("# ", stdout);
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}


/* Reports one test; the location goes to stderr when it fails. */
static TAP_UNUSED int
tap_ok(int pass, const char *file, int line, const char *name)
{
    tap_run++;
    printf("%sok %d - %s\n", pass ? "" : "not ", tap_run, name);

    if (!pass) {
        tap_failed++;
        fflush(stdout);
        fprintf(stderr, "#   Failed test '%s'\n#   at %s line %d.\n",
                name, file, line);
    }

    fflush(stdout);
    return pass;
}


static TAP_UNUSED int
tap_is_int(long long got, long long want, const char *file, int line,
    const char *name)
{
    int  pass;

    pass = tap_ok(got == want, file, line, name);
    if (!pass) {
        fprintf(stderr, "#          got: %lld\n#     expected: %lld\n",
                got, want);
    }

    return pass;
}


/* Passes when |got - want| <= tol, or tol * |want| when that is larger, so
 * one tolerance serves small and large values.  NaN never passes. */
static TAP_UNUSED int
tap_is_float(double got, double want, double tol, const char *file,
    int line, const char *name)
{
    double  diff, limit;
    int     pass;

    diff = fabs(got - want);
    limit = tol * (fabs(want) > 1.0 ? fabs(want) : 1.0);
    pass = tap_ok(!isnan(got) && !isnan(want) && diff <= limit,
                  file, line, name);
    if (!pass) {
        fprintf(stderr, "#          got: %.9g\n#     expected: %.9g"
                " (tolerance %.3g)\n", got, want, tol);
    }

    return pass;
}


static TAP_UNUSED int
tap_is_str(const char *got, const char *want, const char *file, int line,
    const char *name)
{
    int  pass;

    pass = tap_ok(got != NULL && want != NULL && strcmp(got, want) == 0,
                  file, line, name);
    if (!pass) {
        fprintf(stderr, "#          got: '%s'\n#     expected: '%s'\n",
                got ? got : "(null)", want ? want : "(null)");
    }

    return pass;
}


/* Passes when needle occurs in haystack (error messages). */
static TAP_UNUSED int
tap_like(const char *got, const char *needle, const char *file, int line,
    const char *name)
{
    int  pass;

    pass = tap_ok(got != NULL && strstr(got, needle) != NULL,
                  file, line, name);
    if (!pass) {
        fprintf(stderr, "#          got: '%s'\n#     expected to contain:"
                " '%s'\n", got ? got : "(null)", needle);
    }

    return pass;
}


/* Prints the plan; the return value is main's exit status. */
static TAP_UNUSED int
done_testing(void)
{
    printf("1..%d\n", tap_run);
    if (tap_failed) {
        fprintf(stderr, "# Looks like you failed %d test%s of %d.\n",
                tap_failed, tap_failed == 1 ? "" : "s", tap_run);
    }

    fflush(stdout);
    return tap_failed ? 1 : 0;
}


#define ok(cond, name)                                                       \
    tap_ok(!!(cond), __FILE__, __LINE__, name)
#define is_int(got, want, name)                                              \
    tap_is_int((long long) (got), (long long) (want), __FILE__, __LINE__,    \
               name)
#define is_float(got, want, tol, name)                                       \
    tap_is_float((double) (got), (double) (want), tol, __FILE__, __LINE__,   \
                 name)
#define is_str(got, want, name)                                              \
    tap_is_str(got, want, __FILE__, __LINE__, name)
#define like(got, needle, name)                                              \
    tap_like(got, needle, __FILE__, __LINE__, name)
#define pass(name)  tap_ok(1, __FILE__, __LINE__, name)
#define fail(name)  tap_ok(0, __FILE__, __LINE__, name)

#endif /* LT_TAP_H */
