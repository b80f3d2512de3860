
/*
 * pick_bench: the learn_balancer pick, timed alone, outside nginx.
 *
 * It includes the upstream module's directives, pick and latency model
 * (src/http/ngx_http_learn_upstream_{module,peer,learn}.c; not its
 * status output), so that the module's
 * own get_peer, choose, score and free_peer (static functions) run as
 * they are, on round robin peer lists and a balancer model built here in
 * process memory.  The few nginx functions the loop reaches are
 * reproduced below in their simplest form (round robin's free
 * bookkeeping, the rwlock); the rest of what the module links against is
 * never called here and aborts if it is.  The sticky table is not
 * included (its lookup is a mutex and a red-black tree walk in shared
 * memory, measured in nginx: learn_status "pick_ns"); in --test mode the
 * sticky calls are scripted, to check the pick's sticky decisions.
 *
 *   pick_bench [N]      N picks per case (default 2000000): ns per pick
 *   pick_bench --test   TAP checks of the pick (t/085-balancer-pick.t)
 */


#include "../src/http/ngx_http_learn_upstream_module.c"
#include "../src/http/ngx_http_learn_upstream_peer.c"
#include "../src/http/ngx_http_learn_upstream_learn.c"
#include "../src/http/ngx_http_learn_param.c"

#include <stdio.h>
#include <stdlib.h>


#define BENCH_MAX_PEERS  64

#define NGX_RWLOCK_WLOCK  ((ngx_atomic_uint_t) -1)


/* nginx globals the module reads */

volatile ngx_cycle_t   *ngx_cycle;
volatile ngx_msec_t     ngx_current_msec;
volatile ngx_time_t    *ngx_cached_time;
ngx_uint_t              ngx_pagesize = 4096;
uint32_t               *ngx_crc32_table_short;
ngx_module_t            ngx_http_upstream_module;

static ngx_time_t       bench_time;


/* what the loop calls */

void
ngx_rwlock_wlock(ngx_atomic_t *lock)
{
    while (!(*lock == 0 && ngx_atomic_cmp_set(lock, 0, NGX_RWLOCK_WLOCK))) {
        /* single-threaded: never spins */
    }
}


void
ngx_rwlock_rlock(ngx_atomic_t *lock)
{
    (void) ngx_atomic_fetch_add(lock, 1);
}


void
ngx_rwlock_unlock(ngx_atomic_t *lock)
{
    if (*lock == NGX_RWLOCK_WLOCK) {
        (void) ngx_atomic_cmp_set(lock, NGX_RWLOCK_WLOCK, 0);

    } else {
        (void) ngx_atomic_fetch_add(lock, -1);
    }
}


/* ngx_http_upstream_free_round_robin_peer(), without a zone */

void
ngx_http_upstream_free_round_robin_peer(ngx_peer_connection_t *pc,
    void *data, ngx_uint_t state)
{
    ngx_http_upstream_rr_peer_data_t  *rrp = data;

    time_t                        now;
    ngx_http_upstream_rr_peer_t  *peer;

    peer = rrp->current;

    if (state & NGX_PEER_FAILED) {
        now = ngx_time();

        peer->fails++;
        peer->accessed = now;
        peer->checked = now;

    } else if (peer->accessed < peer->checked) {
        peer->fails = 0;
    }

    peer->conns--;

    if (pc->tries) {
        pc->tries--;
    }
}


void *
ngx_palloc(ngx_pool_t *pool, size_t size)
{
    return malloc(size);
}


void *
ngx_pnalloc(ngx_pool_t *pool, size_t size)
{
    return malloc(size);
}


void *
ngx_pcalloc(ngx_pool_t *pool, size_t size)
{
    return calloc(1, size);
}


void ngx_cdecl
ngx_log_error_core(ngx_uint_t level, ngx_log_t *log, ngx_err_t err,
    const char *fmt, ...)
{
    /* the bench's log level lets nothing through */
}


/* scripted sticky table (--test) */

static ngx_int_t   sticky_lookup_rc = NGX_DECLINED;
static ngx_uint_t  sticky_lookup_peer;
static ngx_int_t   sticky_pin_rc = NGX_OK;
static ngx_uint_t  sticky_pin_current;
static ngx_uint_t  sticky_pin_calls;


ngx_int_t
ngx_http_learn_sticky_lookup(ngx_http_learn_sticky_conf_t *scf,
    ngx_http_learn_upstream_sh_t *ush, ngx_str_t *key, uint32_t hash,
    ngx_uint_t *peer)
{
    *peer = sticky_lookup_peer;
    return sticky_lookup_rc;
}


ngx_int_t
ngx_http_learn_sticky_pin(ngx_http_learn_sticky_conf_t *scf,
    ngx_http_learn_upstream_sh_t *ush, ngx_str_t *key, uint32_t hash,
    ngx_int_t expect, ngx_uint_t peer, ngx_uint_t *current)
{
    sticky_pin_calls++;
    *current = sticky_pin_current;
    return sticky_pin_rc;
}


/* linked by the module, never reached here */

#define BENCH_UNREACHED                                                       \
    do {                                                                      \
        fprintf(stderr, "pick_bench: %s reached\n", __func__);                \
        abort();                                                              \
    } while (0)

ngx_int_t
ngx_http_upstream_init_round_robin(ngx_conf_t *cf,
    ngx_http_upstream_srv_conf_t *us)
{
    BENCH_UNREACHED;
}

ngx_int_t
ngx_http_upstream_init_round_robin_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us)
{
    BENCH_UNREACHED;
}

ngx_int_t
ngx_http_upstream_get_round_robin_peer(ngx_peer_connection_t *pc, void *data)
{
    BENCH_UNREACHED;
}

ngx_shm_zone_t *
ngx_shared_memory_add(ngx_conf_t *cf, ngx_str_t *name, size_t size,
    void *tag)
{
    BENCH_UNREACHED;
}

void *
ngx_slab_alloc(ngx_slab_pool_t *pool, size_t size)
{
    BENCH_UNREACHED;
}

void *
ngx_slab_calloc(ngx_slab_pool_t *pool, size_t size)
{
    BENCH_UNREACHED;
}

void ngx_cdecl
ngx_conf_log_error(ngx_uint_t level, ngx_conf_t *cf, ngx_err_t err,
    const char *fmt, ...)
{
    BENCH_UNREACHED;
}

ngx_http_variable_t *
ngx_http_add_variable(ngx_conf_t *cf, ngx_str_t *name, ngx_uint_t flags)
{
    BENCH_UNREACHED;
}

ngx_int_t
ngx_atofp(u_char *line, size_t n, size_t point)
{
    BENCH_UNREACHED;
}

ngx_int_t
ngx_parse_time(ngx_str_t *line, ngx_uint_t is_sec)
{
    BENCH_UNREACHED;
}

ssize_t
ngx_parse_size(ngx_str_t *line)
{
    BENCH_UNREACHED;
}

char *
ngx_http_learn_sticky_parse(ngx_conf_t *cf,
    ngx_http_learn_upstream_srv_conf_t *lucf)
{
    BENCH_UNREACHED;
}

ngx_int_t
ngx_http_learn_sticky_init(ngx_conf_t *cf,
    ngx_http_learn_upstream_srv_conf_t *lucf)
{
    BENCH_UNREACHED;
}

ngx_int_t
ngx_http_learn_sticky_key(ngx_http_request_t *r,
    ngx_http_learn_sticky_conf_t *scf, ngx_str_t *key)
{
    BENCH_UNREACHED;
}


/* one upstream and one request, as nginx would have them */

typedef struct {
    ngx_http_upstream_rr_peer_t          peer[BENCH_MAX_PEERS];
    ngx_http_upstream_rr_peers_t         primary;
    ngx_http_upstream_rr_peers_t         backup;
    struct sockaddr_in                   sin;
    u_char                               names[BENCH_MAX_PEERS][32];

    ngx_http_upstream_srv_conf_t         uscf;
    ngx_http_learn_upstream_srv_conf_t   lucf;
    ngx_http_learn_upstream_sh_t        *sh;

    ngx_http_request_t                   r;
    ngx_http_upstream_t                  u;
    ngx_log_t                            log;
    ngx_peer_connection_t                pc;
    ngx_http_learn_upstream_peer_data_t  lp;
    ngx_http_learn_sticky_conf_t         scf;
} bench_t;


/* n primary peers, the last nbackup of them as backup peers */

static bench_t *
bench_create(ngx_uint_t n, ngx_uint_t nbackup, float explore)
{
    ngx_uint_t                     i, np;
    bench_t                       *b;
    ngx_http_upstream_rr_peer_t   *peer;

    b = calloc(1, sizeof(bench_t));
    if (b == NULL) {
        abort();
    }

    np = n - nbackup;

    b->sin.sin_family = AF_INET;

    for (i = 0; i < n; i++) {
        peer = &b->peer[i];

        peer->sockaddr = (struct sockaddr *) &b->sin;
        peer->socklen = sizeof(struct sockaddr_in);
        peer->name.data = b->names[i];
        peer->name.len = snprintf((char *) b->names[i], 32,
                                  "127.0.0.1:%u", (unsigned) (8000 + i));
        peer->weight = 1;
        peer->effective_weight = 1;
        peer->max_fails = 1;
        peer->fail_timeout = 10;
        peer->next = (i + 1 < n && i + 1 != np) ? &b->peer[i + 1] : NULL;
    }

    b->primary.number = np;
    b->primary.single = (np == 1 && nbackup == 0);
    b->primary.peer = &b->peer[0];
    b->primary.next = nbackup ? &b->backup : NULL;

    b->backup.number = nbackup;
    b->backup.peer = nbackup ? &b->peer[np] : NULL;

    ngx_str_set(&b->uscf.host, "bench");
    b->uscf.peer.data = &b->primary;

    b->sh = calloc(1, offsetof(ngx_http_learn_upstream_sh_t, peer)
                      + n * sizeof(ngx_http_learn_upstream_peer_sh_t));
    if (b->sh == NULL) {
        abort();
    }

    b->sh->npeers = n;

    for (i = 0; i < NGX_HTTP_LEARN_UPSTREAM_NF; i++) {
        b->sh->w[i] = ngx_http_learn_upstream_w0[i];
    }

    b->lucf.enabled = 1;
    b->lucf.explore = explore;
    b->lucf.rate = 0.1f;
    b->lucf.fail_penalty = 1000;
    b->lucf.probe = 10000;
    b->lucf.uscf = &b->uscf;
    b->lucf.nprimary = np;
    b->lucf.npeers = n;
    b->lucf.sh = b->sh;

    b->u.headers_in.status_n = 200;
    b->r.upstream = &b->u;

    b->log.log_level = 0;
    b->pc.log = &b->log;

    return b;
}


/* what init_peer does for each request */

static void
bench_request(bench_t *b)
{
    ngx_http_learn_upstream_peer_data_t  *lp;

    lp = &b->lp;

    ngx_memzero(lp, sizeof(ngx_http_learn_upstream_peer_data_t));

    lp->rrp.peers = &b->primary;
    lp->rrp.tried = &lp->rrp.data;
    lp->conf = &b->lucf;
    lp->request = &b->r;
    lp->index = NGX_ERROR;

    if (b->lucf.sticky) {
        ngx_str_set(&lp->key, "model-1");
    }

    b->pc.tries = b->lucf.npeers;
}


/* learned state: every peer seen, latencies lat[i] ms */

static void
bench_seed(bench_t *b, const float *lat)
{
    ngx_uint_t                          i;
    ngx_http_learn_upstream_peer_sh_t  *ps;

    b->sh->lat_avg = 0.0f;

    for (i = 0; i < b->lucf.npeers; i++) {
        ps = &b->sh->peer[i];
        ps->done = 100;
        ps->lat = lat[i];
        ps->observed = lat[i];
        ps->last = ngx_current_msec;
        b->sh->lat_avg += lat[i] / b->lucf.npeers;
    }
}


static uint64_t
bench_ns(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}


static double
bench_clock(ngx_uint_t n)
{
    uint64_t    t0;
    ngx_uint_t  k;

    t0 = bench_ns();

    for (k = 0; k < n; k++) {
        (void) bench_ns();
    }

    return (double) (bench_ns() - t0) / n;
}


static void
bench_case(const char *what, ngx_uint_t npeers, ngx_uint_t picks)
{
    float       lat[BENCH_MAX_PEERS];
    uint64_t    t0, t1, get, clock_pair, k;
    ngx_uint_t  i;
    bench_t    *b;

    b = bench_create(npeers, 0, 0.005f);

    for (i = 0; i < npeers; i++) {
        lat[i] = (i % 3 == 2) ? 10.0f : 1.0f;   /* every third is slow */
    }

    bench_seed(b, lat);

    /* what two back-to-back clock reads cost, to take out of "get" */

    t0 = bench_ns();
    for (k = 0; k < picks; k++) {
        (void) bench_ns();
    }
    clock_pair = (bench_ns() - t0) / picks;

    /* warm up, then: get_peer alone (timed per call), get + free */

    for (k = 0; k < picks / 10; k++) {
        bench_request(b);
        (void) ngx_http_learn_upstream_get_peer(&b->pc, &b->lp);
        ngx_http_learn_upstream_free_peer(&b->pc, &b->lp, 0);
    }

    get = 0;

    for (k = 0; k < picks; k++) {
        bench_request(b);

        t0 = bench_ns();
        (void) ngx_http_learn_upstream_get_peer(&b->pc, &b->lp);
        get += bench_ns() - t0;

        ngx_http_learn_upstream_free_peer(&b->pc, &b->lp, 0);
    }

    t0 = bench_ns();

    for (k = 0; k < picks; k++) {
        bench_request(b);
        (void) ngx_http_learn_upstream_get_peer(&b->pc, &b->lp);
        ngx_http_learn_upstream_free_peer(&b->pc, &b->lp, 0);
    }

    t1 = bench_ns();

    printf("%-28s %8.1f ns per pick   %8.1f ns per pick + learn\n",
           what, (double) (get / picks) - (double) clock_pair,
           (double) (t1 - t0) / picks);

    free(b->sh);
    free(b);
}


/* --test */

static ngx_uint_t  tap_n, tap_failed;

static void
tap(int ok, const char *what)
{
    tap_n++;

    if (!ok) {
        tap_failed++;
    }

    printf("%sok %u - %s\n", ok ? "" : "not ", (unsigned) tap_n, what);
}


static ngx_int_t
test_pick(bench_t *b)
{
    bench_request(b);

    if (ngx_http_learn_upstream_get_peer(&b->pc, &b->lp) != NGX_OK) {
        return NGX_ERROR;
    }

    return b->lp.index;
}


static void
test_done(bench_t *b, ngx_uint_t state)
{
    ngx_http_learn_upstream_free_peer(&b->pc, &b->lp, state);
}


static void
bench_test(void)
{
    u_char      buf[NGX_HTTP_LEARN_UPSTREAM_MS_LEN];
    float       lat[BENCH_MAX_PEERS];
    size_t      n, k;
    bench_t    *b;
    ngx_int_t   i;

    /* weight: in the pick only */

    b = bench_create(2, 0, 0.0f);
    lat[0] = 3.0f;
    lat[1] = 2.0f;
    bench_seed(b, lat);
    b->peer[0].weight = 3;

    i = test_pick(b);
    tap(i == 0, "weight=3 makes a 3 ms peer win over a 2 ms one");
    tap(b->lp.predicted > 2.5f && b->lp.predicted < 3.5f,
        "... and its prediction is reported as 3 ms, not 1");
    test_done(b, 0);

    /* a never-seen peer: tried when idle, not while requests pile up */

    b = bench_create(2, 0, 0.0f);
    lat[0] = 1.5f;
    lat[1] = 0.0f;
    bench_seed(b, lat);
    b->sh->lat_avg = 2.0f;            /* the mean of what was seen */
    b->sh->peer[1].done = 0;

    i = test_pick(b);
    tap(i == 1, "an idle peer never seen is tried before a known 1.5 ms one");
    tap(b->lp.predicted > 1.9f && b->lp.predicted < 2.1f,
        "... predicted at the mean latency, 2 ms");
    tap(b->lp.x[1] == 0.0f, "... its features are placeholders (not learned)");

    i = test_pick(b);
    tap(i == 0, "with one request in flight to it, the known peer wins");
    tap(b->sh->peer[1].in_flight == 1 && b->sh->peer[0].in_flight == 1,
        "... both now have one in flight");

    /* 18 more with no answer: the 1.5 ms peer until 7 are in flight */
    for (n = 0, k = 0; k < 18; k++) {
        if (test_pick(b) == 1) {
            n++;
            tap(k == 6 && b->lp.predicted > 3.9f && b->lp.predicted < 4.1f,
                "a burst spreads: the new peer again at the 9th request, "
                "predicted at the mean times 1 + in flight (2 x 2 ms)");
        }
    }
    tap(n == 1, "... once in those 18");

    /* a wrapped in-flight counter does not make a prediction absurd */

    b = bench_create(2, 0, 0.0f);
    bench_seed(b, lat);
    b->sh->peer[0].in_flight = (ngx_atomic_uint_t) -5;
    b->sh->peer[1].in_flight = (ngx_atomic_uint_t) -5;
    (void) test_pick(b);
    tap(b->lp.predicted < 100.0f, "in flight below zero counts as zero");

    /* $learn_upstream_predicted_ms is bounded */

    n = ngx_http_learn_upstream_ms(buf, sizeof(buf), 9.2e18);
    tap(n == sizeof("1000000000.000") - 1
        && ngx_strncmp(buf, "1000000000.000", n) == 0,
        "9.2e18 ms prints as 1000000000.000");
    n = ngx_http_learn_upstream_ms(buf, sizeof(buf), NAN);
    tap(n == 1 && buf[0] == '-', "NaN prints as -");
    n = ngx_http_learn_upstream_ms(buf, sizeof(buf), 12.3456);
    tap(n == 6 && ngx_strncmp(buf, "12.346", 6) == 0, "12.3456 is 12.346");

    /* sticky: the pick's decisions, with a scripted table */

    b = bench_create(3, 0, 0.0f);
    lat[0] = 1.0f;
    lat[1] = 5.0f;
    lat[2] = 9.0f;
    bench_seed(b, lat);
    b->lucf.sticky = &b->scf;

    /* a new key placed, but another worker pinned it to peer 2 first */
    sticky_lookup_rc = NGX_DECLINED;
    sticky_pin_rc = NGX_DECLINED;
    sticky_pin_current = 2;
    i = test_pick(b);
    tap(i == 2 && b->lp.pin == NGX_HTTP_LEARN_PIN_HIT,
        "the loser of a first-placement race follows the winner's pin");
    tap(b->lp.predicted > 8.0f, "... with the winner's peer's prediction");
    test_done(b, 0);

    /* ... unless the winner's peer is not usable here */
    b->peer[2].down = 1;
    i = test_pick(b);
    tap(i == 0 && b->lp.pin == NGX_HTTP_LEARN_PIN_BUSY,
        "... and goes its own way, unpinned, when that peer is down");
    test_done(b, 0);
    b->peer[2].down = 0;

    /* pinned to peer 1, which is full: this request elsewhere, no re-pin */
    sticky_lookup_rc = NGX_OK;
    sticky_lookup_peer = 1;
    sticky_pin_rc = NGX_OK;
    sticky_pin_calls = 0;
    b->peer[1].max_conns = 1;
    b->peer[1].conns = 1;
    i = test_pick(b);
    tap(i != 1 && b->lp.pin == NGX_HTTP_LEARN_PIN_BUSY && sticky_pin_calls == 0,
        "a pinned peer at max_conns: another peer, the pin not moved");
    test_done(b, 0);
    b->peer[1].conns = 0;

    i = test_pick(b);
    tap(i == 1 && b->lp.pin == NGX_HTTP_LEARN_PIN_HIT,
        "... and the next request is on the pinned peer again");
    test_done(b, 0);

    /* pinned to peer 1, which failed: moved */
    b->peer[1].fails = 1;
    b->peer[1].checked = ngx_time();
    i = test_pick(b);
    tap(i != 1 && b->lp.pin == NGX_HTTP_LEARN_PIN_MOVED
        && sticky_pin_calls == 1,
        "a pinned peer out after max_fails: the key moves");
    test_done(b, 0);

    /* a backup pin: kept while the primaries are up, left when it fails */

    b = bench_create(3, 1, 0.0f);
    lat[0] = 1.0f;
    lat[1] = 1.0f;
    lat[2] = 1.0f;
    bench_seed(b, lat);
    b->lucf.sticky = &b->scf;
    sticky_lookup_rc = NGX_OK;
    sticky_lookup_peer = 2;
    sticky_pin_rc = NGX_OK;
    sticky_pin_calls = 0;

    i = test_pick(b);
    tap(i == 2 && b->lp.pin == NGX_HTTP_LEARN_PIN_HIT
        && b->lp.rrp.peers == &b->backup,
        "a key pinned to the backup peer stays there, primaries up");
    test_done(b, NGX_PEER_FAILED);

    /* the retry of the same request */
    i = ngx_http_learn_upstream_get_peer(&b->pc, &b->lp) == NGX_OK
        ? b->lp.index : NGX_ERROR;
    tap((i == 0 || i == 1) && b->lp.pin == NGX_HTTP_LEARN_PIN_MOVED
        && b->lp.rrp.peers == &b->primary && sticky_pin_calls == 1,
        "the backup failed: the retry goes to a primary and the key moves");
    test_done(b, 0);

    printf("1..%u\n", (unsigned) tap_n);
}


int
main(int argc, char **argv)
{
    long  picks;

    bench_time.sec = time(NULL);
    ngx_cached_time = &bench_time;
    ngx_current_msec = 1000000;

    srandom(1);

    if (argc > 1 && strcmp(argv[1], "--test") == 0) {
        bench_test();
        return tap_failed ? 1 : 0;
    }

    picks = argc > 1 ? atol(argv[1]) : 2000000;

    if (picks <= 0) {
        fprintf(stderr, "usage: pick_bench [PICKS] | --test\n");
        return 2;
    }

    printf("learn_balancer pick, %ld picks per case (get_peer: choose, "
           "score, take; learn: free_peer's update)\n", picks);
    printf("both include the module's own clock reads (two in get_peer, "
           "one in free_peer): %.1f ns each here\n", bench_clock(picks));

    bench_case("3 peers (all compared)", 3, picks);
    bench_case("8 peers (two random)", 8, picks);
    bench_case("32 peers (two random)", 32, picks);

    return 0;
}
