package LearnBrowser;

# Debian's chromium, headless, for the suites that look at a page the way
# a browser builds it: find() the binary (TEST_CHROMIUM, else chromium on
# PATH), run(DIR, ARGS...) it in a process group of its own, killed by
# that group's id when it outlives the timeout, and return its exit
# status and stdout.

use strict;
use warnings;

use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

sub find {
    my ($bin) = grep { $_ && -x $_ }
        ($ENV{TEST_CHROMIUM}, map { "$_/chromium" } split /:/, $ENV{PATH} // '');
    return $bin;
}

# (exit status, stdout); -1 after 60 s
sub run {
    my ($chromium, $dir, @args) = @_;
    my $out = "$dir/stdout";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        setpgrp(0, 0);
        open STDOUT, '>', $out or die;
        open STDERR, '>', "$dir/stderr" or die;
        exec $chromium, '--headless', '--no-sandbox', '--disable-gpu',
             '--no-first-run', '--hide-scrollbars',
             "--user-data-dir=$dir/profile", @args;
        exit 127;
    }
    my $rc;
    my $deadline = time + 60;
    while (time < $deadline) {
        if (waitpid($pid, WNOHANG) == $pid) { $rc = $? >> 8; last }
        sleep 0.1;
    }
    kill 'KILL', -$pid;     # what is left of its group (renderers)
    if (!defined $rc) {
        waitpid($pid, 0);
        $rc = -1;
    }
    open my $fh, '<', $out or return ($rc, '');
    local $/;
    return ($rc, scalar <$fh>);
}

1;
