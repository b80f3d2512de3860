package LearnValgrind;

# TEST_NGINX_USE_VALGRIND=1: the nginx that the shim and LearnServer start
# runs under memcheck, every process (master, workers, the helpers it
# forks) with its own report in the server's logs/ directory.  memcheck
# runs with -q, so a report that is not empty holds an error: an invalid
# read or write, a jump on uninitialised memory, or a definite leak.
# Suppressions for what is not ours (LuaJIT's own allocator and string
# hashing, OpenBLAS's thread start) are in t/valgrind.suppress.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use Test::More ();

my $root = abs_path(dirname(__FILE__) . '/../..');

sub enabled { return $ENV{TEST_NGINX_USE_VALGRIND} ? 1 : 0 }

# how much slower nginx is under memcheck: what the suites wait for
# (a start, a reply, a shutdown) is given this many times longer
sub slowdown { return enabled() ? 20 : 1 }

# true under memcheck for work that would take hours there (train steps
# of the 784-1024-1024-10 model: OpenBLAS's kernels run instruction by
# instruction), with a note saying what is not run
sub heavy {
    my ($what) = @_;
    return 0 unless enabled();
    Test::More::diag("not run under memcheck (hours there): $what");
    return 1;
}

# the command line that runs @cmd under memcheck, reports in $logdir
sub wrap {
    my ($logdir, @cmd) = @_;
    return @cmd unless enabled();
    my $supp = $ENV{TEST_NGINX_VALGRIND_SUPPRESSIONS}
               || "$root/t/valgrind.suppress";
    return ('valgrind', '-q', '--tool=memcheck', '--leak-check=full',
            '--show-leak-kinds=definite', '--errors-for-leak-kinds=definite',
            '--num-callers=30', "--suppressions=$supp",
            '--gen-suppressions=all',
            "--log-file=$logdir/valgrind.%p.log", @cmd);
}

# the reports with something in them, as (file => text); the empty ones
# are removed so that a later check does not see them again
sub reports {
    my ($logdir) = @_;
    my %bad;
    for my $f (glob("$logdir/valgrind.*.log")) {
        if (-s $f) {
            local $/;
            open my $in, '<', $f or next;
            my $text = <$in>;
            close $in;
            # valgrind 3.19 does not know openat2 (437): it answers ENOSYS,
            # and learn_data_root falls back to realpath() as on kernels
            # before 5.6; its five-line warning is not a memory error
            $text =~ s/^--\d+-- (?:WARNING: unhandled amd64-linux syscall: 437|You may be able to write|Read the file README_MISSING|Nevertheless we consider|it at http:\/\/valgrind\.org).*\n//mg;
            $bad{$f} = $text if $text =~ /\S/;
        }
        unlink $f;
    }
    return %bad;
}

1;
