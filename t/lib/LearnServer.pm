package LearnServer;

# Starts nginx with the module for suites that need several clients at
# once (Test::Nginx sends one request at a time): its own prefix under
# t/servroot-NAME, 127.0.0.1 only, stopped by its pid.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use IO::Socket::INET;
use Time::HiRes qw(sleep time);
use HTTP::Tiny;
use Test::More ();

use lib dirname(__FILE__);
use LearnValgrind;

my $root = abs_path(dirname(__FILE__) . '/../..');

sub new {
    my ($class, %args) = @_;
    my $self = bless {
        name    => $args{name} || 'server',
        port    => $args{port} || free_port(),
        workers => $args{workers} || 2,
        http    => $args{http} || '',
        server  => $args{server} || '',
        main    => $args{main} || '',
    }, $class;
    $self->{prefix} = "$root/t/servroot-$self->{name}";
    return $self;
}

# an nginx that a suite started itself from a configuration of its own
# (an example file): stop() and url() work on it as on one start() made
sub attach {
    my ($class, %args) = @_;
    return bless { name => 'attached', workers => 1, %args }, $class;
}

# a port nothing listens on now, chosen by the kernel
sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Listen => 1, ReuseAddr => 1)
        or die "no free port: $!";
    my $port = $s->sockport;
    close $s;
    return $port;
}

# the "user" line, as Test::Nginx writes it: TEST_NGINX_WORKER_USER when
# set, else root when we are root (workers as nobody could not reach a
# checkout under a 0700 directory such as /root or a mktemp -d folder:
# no checkpoints, no body temp files, no device backend), else none
sub worker_user {
    return $ENV{TEST_NGINX_WORKER_USER} if defined $ENV{TEST_NGINX_WORKER_USER};
    return $> == 0 ? 'root' : '';
}

sub port { $_[0]{port} }
sub url { "http://127.0.0.1:$_[0]{port}$_[1]" }
sub error_log { "$_[0]{prefix}/logs/error.log" }

# start(): a fresh prefix; start(keep => 1): the same prefix again (a
# restart: checkpoints and logs stay)
sub start {
    my ($self, %opt) = @_;
    my $bin = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
    my $modules = $ENV{TEST_NGINX_LOAD_MODULES}
                  || "$root/build/ngx_http_learn_module.so";
    my $load = join '', map { "load_module $_;\n" } split ' ', $modules;
    my $p = $self->{prefix};

    remove_tree($p) unless $opt{keep};
    make_path("$p/conf", "$p/logs", "$p/tmp", "$p/state");
    my $user = worker_user();
    # a suite that names its own user (main => "user nobody nogroup;") keeps it
    my $user_line = ($user eq '' || $self->{main} =~ /(?:^|;)\s*user\s/)
                    ? '' : "user $user;";
    # a worker user of TEST_NGINX_WORKER_USER's choosing must write the
    # checkpoints (it must also reach the checkout: that is the caller's)
    chmod 0777, "$p/state" if $user ne '' && $user ne 'root';

    open my $fh, '>', "$p/conf/nginx.conf" or die $!;
    print $fh <<"_EOC_";
$load
worker_processes $self->{workers};
$user_line
$self->{main}
pid logs/nginx.pid;
error_log logs/error.log info;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    $self->{http}
    server {
        listen 127.0.0.1:$self->{port};
        $self->{server}
    }
}
_EOC_
    close $fh;

    $self->{bin} = $bin;
    system(LearnValgrind::wrap("$p/logs", $bin, '-p', "$p/",
                               '-c', 'conf/nginx.conf')) == 0
        or die "nginx failed to start: see $p/logs/error.log";
    $self->wait_listening;
    $self->wait_workers;
    return $self;
}

# every worker forked and titled: listening alone is not enough, the
# master accepts nothing but the first worker may already answer while
# the others are not yet forked (under load, seconds later)
sub wait_workers {
    my ($self, %opt) = @_;

    my $deadline = time + ($opt{timeout} // 20) * LearnValgrind::slowdown();
    while (time < $deadline) {
        my %c = $self->children;
        # under memcheck the titles are valgrind's command line
        my $n = LearnValgrind::enabled() ? keys %c
              : grep { /worker process/ && !/is shutting down/ } values %c;
        return $self if $n >= $self->{workers};
        sleep 0.05;
    }
    die "nginx did not start $self->{workers} workers";
}

sub wait_listening {
    my ($self) = @_;

    my $deadline = time + 10 * LearnValgrind::slowdown();
    while (time < $deadline) {
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$self->{port}");
        if ($s) { close $s; return $self; }
        sleep 0.05;
    }
    die "nginx did not listen on $self->{port}";
}

# rewrite the http{} part of the config, then HUP; waits until the new
# workers run and the old ones are gone (dies if that takes 20 s)
sub reload {
    my ($self, %args) = @_;
    $self->set_http($args{http}) if defined $args{http};
    my @old = $self->workers;
    my %old = map { $_ => 1 } @old;
    kill 'HUP', $self->pid;
    my $deadline = time + ($args{timeout} // 20) * LearnValgrind::slowdown();
    while (time < $deadline) {
        my %c = $self->children;
        my @new = grep { !$old{$_} && ($c{$_} =~ /worker process/
                                       || LearnValgrind::enabled()) } keys %c;
        return $self if @new >= $self->{workers} && !grep { alive($_) } @old;
        sleep 0.05;
    }
    die "reload: new workers did not replace the old ones";
}

sub workers {
    my ($self) = @_;
    my $pid = $self->pid or return;
    my @w = `ps -o pid= --ppid $pid`;
    s/\s+//g for @w;
    return grep { length } @w;
}

# the master's children: pid => title ("nginx: worker process", "nginx:
# cache manager process", ...)
sub children {
    my ($self) = @_;
    my $pid = $self->pid or return;
    my %c;
    for (`ps -o pid=,args= --ppid $pid`) {
        $c{$1} = $2 if /^\s*(\d+)\s+(.*?)\s*$/;
    }
    return %c;
}

# SIGHUP without waiting for new workers (a reload that may fail)
sub hup {
    my ($self, %args) = @_;
    $self->set_http($args{http}) if defined $args{http};
    kill 'HUP', $self->pid;
}

# the error.log lines matching re once there are any (or none after
# timeout seconds); from byte offset "from" on
sub wait_log {
    my ($self, $re, %opt) = @_;
    my $deadline = time + ($opt{timeout} // 10);
    while (1) {
        my @hits;
        if (open my $fh, '<', $self->error_log) {
            seek $fh, $opt{from} // 0, 0;
            @hits = grep { /$re/ } <$fh>;
        }
        return @hits if @hits || time >= $deadline;
        sleep 0.05;
    }
}

# LearnServer::wait_for(sub { ... }, timeout => S): the condition's value
# once it is true, or false after S seconds (10 by default): what a suite
# waits for under load instead of a fixed sleep
sub wait_for {
    my ($cond, %opt) = @_;
    my $deadline = time + ($opt{timeout} // 10) * LearnValgrind::slowdown();
    while (1) {
        my $v = $cond->();
        return $v if $v || time >= $deadline;
        sleep 0.05;
    }
}

# where error.log ends now, for wait_log(from => ...)
sub log_size { -s $_[0]->error_log || 0 }

# SIGKILL the master and every worker: no exit handler runs
sub kill9 {
    my ($self) = @_;
    my $pid = $self->pid or return;
    my @all = ($pid, $self->workers);
    kill 'KILL', @all;
    my $deadline = time + 5;
    while (grep({ alive($_) } @all) && time < $deadline) { sleep 0.02 }
    unlink "$self->{prefix}/logs/nginx.pid";
    # a killed process wrote no leak summary: what it wrote before counts
    $self->check_valgrind;
}

# nginx -t on the current config: (exit status, what it printed)
sub test_config {
    my ($self) = @_;
    my $out = `$self->{bin} -t -p $self->{prefix}/ -c conf/nginx.conf 2>&1`;
    return ($? >> 8, $out);
}

# rewrite the config with new http{} text (the server is stopped)
sub set_http {
    my ($self, $http) = @_;
    my $conf = "$self->{prefix}/conf/nginx.conf";
    open my $in, '<', $conf or die $!;
    local $/;
    my $text = <$in>;
    close $in;
    $text =~ s/\Q$self->{http}\E/$http/;
    $self->{http} = $http;
    open my $out, '>', $conf or die $!;
    print $out $text;
    close $out;
}

sub pid {
    my ($self) = @_;
    open my $fh, '<', "$self->{prefix}/logs/nginx.pid" or return;
    my $pid = <$fh> // return;
    chomp $pid;
    return $pid;
}

# CPU time (user + system, all threads) the first worker has used, in
# clock ticks: how far a step the worker runs has come, on a machine
# where a fixed sleep says nothing
sub worker_ticks {
    my ($self) = @_;
    my ($w) = $self->workers;
    open my $fh, '<', "/proc/$w/stat" or return 0;
    my @f = split ' ', (<$fh> =~ s/^.*\) //r);
    return $f[11] + $f[12];
}

# running, and not a zombie (a daemon's parent is PID 1, which may never
# reap it here)
sub alive {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    my $stat = <$fh> // '';
    return $stat !~ /^\d+ \(.*\) Z/;
}

sub stop {
    my ($self) = @_;
    my $pid = $self->pid or return;
    kill 'QUIT', $pid;
    my $deadline = time + 10 * LearnValgrind::slowdown();
    while (alive($pid) && time < $deadline) { sleep 0.02 }
    kill 'KILL', $pid if alive($pid);
    unlink "$self->{prefix}/logs/nginx.pid";
    $self->check_valgrind;
}

# under TEST_NGINX_USE_VALGRIND, one failure per memcheck report that
# holds something (workers that exited during a reload included)
sub check_valgrind {
    my ($self) = @_;
    return unless LearnValgrind::enabled();
    my %bad = LearnValgrind::reports("$self->{prefix}/logs");
    for my $f (sort keys %bad) {
        Test::More::fail("$self->{name}: valgrind reported errors ($f)");
        Test::More::diag($bad{$f});
    }
}

sub DESTROY { $_[0]->stop }

1;
