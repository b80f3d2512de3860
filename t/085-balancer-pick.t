# The learn_balancer pick outside nginx (bench/pick_bench.c --test): the
# module's get_peer and free_peer on peer lists built in memory, with a
# scripted sticky table: weight only in the pick, the prior of a peer
# never seen, the bounded $learn_upstream_predicted_ms, and the pick's
# sticky decisions (a lost first-placement race, max_conns, backup pins).

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);

my $root = abs_path(dirname(__FILE__) . '/..');

if (!-f "$root/build/ngx/Makefile") {
    print "1..0 # SKIP no nginx build tree (run make first)\n";
    exit 0;
}

if (system("make -s -C $root pick-bench-build >/dev/null") != 0) {
    print "1..1\nnot ok 1 - build build/bench/pick_bench\n";
    exit 1;
}

exec "$root/build/bench/pick_bench", '--test' or die "exec: $!";
