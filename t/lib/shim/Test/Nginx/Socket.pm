package Test::Nginx::Socket;

# A small, independently written stand-in for Test::Nginx::Socket (CPAN),
# for machines that cannot install the real one.  t/lib/TestLearn.pm loads it
# only when `require Test::Nginx::Socket` fails (or TEST_LEARN_SHIM=1).
#
# Same test-file format (Test::Base blocks, filters, ONLY/SKIP/LAST), same
# section names, environment variables, defaults and test names as the real
# module, for this subset:
#
#   functions  run_tests repeat_each plan no_shuffle master_on master_off
#              master_process_enabled workers worker_connections log_level
#              no_long_string no_diff no_root_location env_to_nginx timeout
#              config_preamble add_block_preprocessor add_cleanup_handler
#              add_test_cleanup_handler add_response_body_check bail_out
#              is_str server_addr server_name server_port
#              server_port_for_client server_root html_dir
#   sections   see %KnownSections below; a block using any other section
#              fails (the real module would silently ignore a typo)
#   env        TEST_NGINX_BINARY LOAD_MODULES SERVER_PORT PORT CLIENT_PORT
#              SERVROOT RANDOMIZE NO_CLEAN LOG_LEVEL MASTER_PROCESS
#              NO_SHUFFLE TIMEOUT SLEEP VERBOSE FAST_SHUTDOWN
#              FORCE_RESTART_ON_TEST CHECK_ACCUM_ERR_LOG ERROR_LOG
#              WORKER_USER, and $TEST_NGINX_* / $TEST_NGINX_RAND_PORT_N
#              expansion in config sections
#
# Not supported (use the real module): use_hup, no_nginx_manager, http2/3,
# curl, valgrind/stap/leak/benchmark modes, tcp_/udp_ mock servers.
#
# Differences on purpose: the test server listens on 127.0.0.1:PORT (the
# real one on *:PORT); a config error that nginx reports as [emerg] bails out
# at once instead of after 30 seconds of retries; nginx's stderr is shown as
# a diagnostic instead of being passed through.

use strict;
use warnings;

use Test::Base -base;    # blocks, filters, ONLY/SKIP/LAST, no_diff, plan ...

use Test::More ();
use Test::LongString ();
use HTTP::Response ();
use IO::Socket::INET ();
use IO::Select ();
use POSIX qw(:sys_wait_h SIGQUIT SIGTERM SIGKILL EAGAIN EWOULDBLOCK EINTR);
use Time::HiRes qw(sleep time);
use File::Path qw(make_path remove_tree);
use File::Spec ();
use File::Temp ();
use List::Util qw(shuffle min);
use Scalar::Util qw(looks_like_number);
use Time::Local qw(timegm);
use Encode ();
use Carp qw(croak);

our $VERSION = '0.33_shim';

our @EXPORT = qw(
    env_to_nginx is_str plan run_tests run_test
    repeat_each config_preamble worker_connections master_process_enabled
    no_long_string workers master_on master_off
    log_level no_shuffle no_root_location use_hup
    server_name server_addr server_root html_dir server_port
    server_port_for_client timeout no_nginx_manager check_accum_error_log
    add_block_preprocessor bail_out add_test_cleanup_handler
    add_cleanup_handler add_response_body_check
);

# ---------------------------------------------------------------------------
# settings (same environment variables and defaults as the real module)
# ---------------------------------------------------------------------------

our $Verbose              = $ENV{TEST_NGINX_VERBOSE};
our $NginxBinary          = $ENV{TEST_NGINX_BINARY} || 'nginx';
our $LoadModules          = $ENV{TEST_NGINX_LOAD_MODULES};
our $ServerAddr           = '127.0.0.1';
our $ServerName           = 'localhost';
our $ServerPort           = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} || 1984;
our $ServerPortForClient  = $ENV{TEST_NGINX_CLIENT_PORT} || $ServerPort;
our $Workers              = 1;
our $WorkerConnections    = 64;
our $LogLevel             = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
our $MasterProcessEnabled = $ENV{TEST_NGINX_MASTER_PROCESS} || 'off';
our $DaemonEnabled        = 'on';
our $RepeatEach           = 1;
our $NoShuffle            = $ENV{TEST_NGINX_NO_SHUFFLE} || 0;
our $NoRootLocation       = 0;
our $Timeout              = $ENV{TEST_NGINX_TIMEOUT} || 3;
our $Sleep                = $ENV{TEST_NGINX_SLEEP} || 0.015;
our $CheckAccumErrLog     = $ENV{TEST_NGINX_CHECK_ACCUM_ERR_LOG};
our $Randomize            = $ENV{TEST_NGINX_RANDOMIZE};
our $NoClean              = $ENV{TEST_NGINX_NO_CLEAN};
our $WorkerUser           = $ENV{TEST_NGINX_WORKER_USER};
our $ForceRestartOnTest   = defined $ENV{TEST_NGINX_FORCE_RESTART_ON_TEST}
                            ? $ENV{TEST_NGINX_FORCE_RESTART_ON_TEST} : 1;
our $NoLongString;
our $ConfigPreamble       = '';
our $NginxVersion;          # canonical, e.g. 1.022001
our $NginxRawVersion;       # e.g. 1.22.1

our (@EnvToNginx, @BlockPreprocessors, @CleanupHandlers,
     @TestCleanupHandlers, @ResponseBodyChecks);

my $PrevConfig;
my $PrevBlock;
my $ErrLogPos = 0;
my $RandPorts = {};
my $ConnectFailures = 0;
my %Started;                # pid => 1 for every nginx master we started
my $InChild = 0;

# TEST_NGINX_USE_VALGRIND: nginx runs under memcheck (t/lib/LearnValgrind.pm),
# what the shim waits for is given the slowdown, and every report that
# memcheck writes fails the block whose server wrote it
our $UseValgrind = $ENV{TEST_NGINX_USE_VALGRIND};
if ($UseValgrind) { require LearnValgrind; }
sub _slow { return $UseValgrind ? $_[0] * LearnValgrind::slowdown() : $_[0] }

srand($$ ^ int(time * 1000));

if ($Randomize) {
    $ServerPort = _free_port({}) or _early_bail("cannot find a free port");
    $ServerPortForClient = $ServerPort;
}

our $ServRoot;
if ($Randomize) {
    $ServRoot = File::Spec->rel2abs("t/servroot_$ServerPort");
} else {
    $ServRoot = File::Spec->rel2abs($ENV{TEST_NGINX_SERVROOT} || 't/servroot');
}
$ServRoot =~ s{/+$}{};
$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;

our $LogDir     = "$ServRoot/logs";
our $ErrLogFile = "$LogDir/error.log";
our $AccLogFile = "$LogDir/access.log";
our $HtmlDir    = "$ServRoot/html";
our $ConfDir    = "$ServRoot/conf";
our $ConfFile   = "$ConfDir/nginx.conf";
our $PidFile    = "$LogDir/nginx.pid";
our $CacheDir   = "$ServRoot/cache";

sub _early_bail { Test::More::BAIL_OUT("Test::Nginx::Socket (shim): @_") }

# ---------------------------------------------------------------------------
# exported configuration functions
# ---------------------------------------------------------------------------

sub _getset { my $ref = shift; $$ref = shift if @_; return $$ref }

sub repeat_each (@)            { _getset(\$RepeatEach, @_) }
sub workers (@)                { _getset(\$Workers, @_) }
sub worker_connections (@)     { _getset(\$WorkerConnections, @_) }
sub log_level (@)              { _getset(\$LogLevel, @_) }
sub timeout (@)                { _getset(\$Timeout, @_) }
sub server_addr (@)            { _getset(\$ServerAddr, @_) }
sub server_name (@)            { _getset(\$ServerName, @_) }
sub server_port (@)            { _getset(\$ServerPort, @_) }
sub server_port_for_client (@) { _getset(\$ServerPortForClient, @_) }
sub config_preamble ($)        { $ConfigPreamble = shift }
sub no_shuffle ()              { $NoShuffle = 1 }
sub no_root_location ()        { $NoRootLocation = 1 }
sub no_long_string ()          { $NoLongString = 1 }
sub check_accum_error_log ()   { $CheckAccumErrLog = 1 }
sub master_on ()               { $MasterProcessEnabled = 'on' }
sub master_off ()              { $MasterProcessEnabled = 'off' }
sub html_dir ()                { $HtmlDir }
sub server_root ()             { $ServRoot }

sub master_process_enabled (@) {
    $MasterProcessEnabled = $_[0] ? 'on' : 'off' if @_;
    return $MasterProcessEnabled;
}

sub env_to_nginx (@) {
    croak "env_to_nginx: no arguments specified" unless @_;
    for my $v (@_) {
        croak "env_to_nginx: bad argument value: $v\n"
            if $v !~ /^[A-Za-z_]/ || $v =~ /\n/;
        push @EnvToNginx, $v;
    }
}

sub add_block_preprocessor (&)  { unshift @BlockPreprocessors, shift }
sub add_cleanup_handler ($)      { unshift @CleanupHandlers, shift }
sub add_test_cleanup_handler ($) { unshift @TestCleanupHandlers, shift }
sub add_response_body_check ($)  { push @ResponseBodyChecks, shift }

sub use_hup () {
    croak "use_hup() is not supported by the Test::Nginx::Socket shim "
        . "in t/lib/shim (install the real Test::Nginx)";
}

sub no_nginx_manager () {
    croak "no_nginx_manager() is not supported by the Test::Nginx::Socket "
        . "shim in t/lib/shim (install the real Test::Nginx)";
}

sub bail_out (@) {
    cleanup();
    Test::More::BAIL_OUT(join '', @_);
}

sub is_str (@) {
    my ($got, $expected, $desc) = @_;
    if (ref $expected && ref $expected eq 'Regexp') {
        return Test::More::like($got, $expected, $desc);
    }
    return $NoLongString ? is($got, $expected, $desc)
                         : Test::LongString::is_string($got, $expected, $desc);
}

# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------

sub _free_port {
    my ($used) = @_;
    for (1 .. 1000) {
        my $port = 1988 + int rand(63547);
        next if $used->{$port};
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                      LocalPort => $port, Proto => 'tcp',
                                      Listen => 5, ReuseAddr => 1);
        next unless $s;
        close $s;
        return $port;
    }
    return undef;
}

sub _parse_time {
    my $t = shift;
    return undef unless defined $t;
    $t =~ s/^\s+|\s+$//g;
    if ($t =~ s/([^_a-zA-Z])ms$/$1/) {
        $t /= 1000;
    } else {
        $t =~ s/([^_a-zA-Z])s$/$1/;
    }
    return $t;
}

sub _canon_version { sprintf "%d.%03d%03d", @_[0 .. 2] }

sub _fmt_str {
    my $s = shift;
    chomp $s;
    $s =~ s/"/\\"/g;
    $s =~ s/\r/\\r/g;
    $s =~ s/\n/\\n/g;
    return $s;
}

sub _trim_summary {
    my $s = shift;
    return '' unless defined $s;
    $s =~ s/^\s+|\s+$//g;
    $s =~ s/\n/ /g;
    $s =~ s/\s{2,}/ /g;
    return $s;
}

# Replace $TEST_NGINX_FOO by the environment variable's value; a missing
# variable is fatal, like in the real module.  $TEST_NGINX_RAND_PORT_N picks
# a free port once per block.
sub _expand_env {
    my ($text, $name) = @_;
    return undef unless defined $text;
    $text =~ s{\$(TEST_NGINX_[_A-Z0-9]+)}{
        my $var = $1;
        my $val;
        if ($var =~ /^TEST_NGINX_RAND_PORT_\d+$/) {
            $val = $RandPorts->{$var} //= do {
                my %used = (($ServerPort // 0) => 1, map { $_ => 1 } grep { defined } values %$RandPorts);
                _free_port(\%used)
                    // bail_out("$name - Cannot find an available listening port number for $var.\n");
            };
        } else {
            bail_out("$name - No environment $var defined.\n")
                unless defined $ENV{$var};
            $val = $ENV{$var};
        }
        $val;
    }ge;
    return $text;
}

sub _can_run {
    my $cmd = shift;
    if ($cmd =~ m{/}) {
        return -f $cmd && -x _ ? $cmd : undef;
    }
    for my $dir (split /:/, $ENV{PATH} // '') {
        next if $dir eq '';
        return "$dir/$cmd" if -f "$dir/$cmd" && -x _;
    }
    return undef;
}

sub _nginx_V {
    my $out = `"$NginxBinary" -V 2>&1`;
    return ($?, $out);
}

sub _get_nginx_version {
    bail_out("Cannot find the nginx executable \"$NginxBinary\" "
             . "(set TEST_NGINX_BINARY)")
        unless _can_run($NginxBinary);
    my ($rc, $out) = _nginx_V();
    bail_out("Failed to get the version of the Nginx in PATH: $out")
        if $rc != 0;
    if ($out =~ m{(?:nginx|openresty)[^/]*/(\d+)\.(\d+)\.(\d+)}s
        || $out =~ m{\w+/(\d+)\.(\d+)\.(\d+)}s)
    {
        $NginxRawVersion = "$1.$2.$3";
        return _canon_version($1, $2, $3);
    }
    bail_out("Failed to parse the output of \"nginx -V\": $out\n");
}

# ---------------------------------------------------------------------------
# process handling: every nginx is started by us and stopped by its pid
# ---------------------------------------------------------------------------

# Become a "child subreaper" (Linux) so that the daemonized nginx masters are
# re-parented to this test process and can be reaped here, instead of
# lingering as zombies when PID 1 does not reap orphans.
sub _become_subreaper {
    return unless $^O eq 'linux';
    my $nr = eval { require 'sys/syscall.ph'; &SYS_prctl() };
    if (!defined $nr) {
        require Config;
        my $arch = $Config::Config{archname} // '';
        $nr = $arch =~ /^x86_64/ ? 157 : $arch =~ /^(?:aarch64|arm64)/ ? 167 : undef;
    }
    return unless defined $nr;
    local $!;
    syscall($nr, 36, 1, 0, 0, 0);    # PR_SET_CHILD_SUBREAPER
}

sub _pid_alive {
    my $pid = shift;
    return 0 unless defined $pid && $pid =~ /^\d+$/ && $pid > 1;
    waitpid($pid, WNOHANG);    # reap it if it is (now) our child
    return 0 unless kill 0, $pid;
    if (open my $fh, '<', "/proc/$pid/stat") {
        my $st = <$fh> // '';
        close $fh;
        return 0 if $st =~ /^\d+ \(.*\) [ZX] /s;
    }
    return 1;
}

sub _is_nginx_process {
    my $pid = shift;
    open my $fh, '<', "/proc/$pid/cmdline" or return 1;   # no procfs: trust it
    local $/;
    my $cmd = <$fh> // '';
    close $fh;
    return $cmd =~ /nginx/;
}

sub _read_pid_file {
    open my $in, '<', $PidFile or return undef;
    local $/;
    my $pid = <$in> // '';
    close $in;
    $pid =~ s/\s+//g;
    return $pid =~ /^\d+$/ ? $pid : undef;
}

sub _stop_nginx {
    my ($pid, $name) = @_;
    return unless _pid_alive($pid);
    if (!$Started{$pid} && !_is_nginx_process($pid)) {
        warn "$name - pid $pid from $PidFile is not an nginx process; not killing it\n";
        return;
    }
    warn "sending QUIT signal to $pid\n" if $Verbose;
    kill($ENV{TEST_NGINX_FAST_SHUTDOWN} ? SIGTERM : SIGQUIT, $pid);

    my $deadline = time + _slow($Timeout);
    while (time < $deadline) {
        goto done unless _pid_alive($pid);
        sleep 0.02;
    }

    warn "$name - timeout when waiting for the nginx process $pid to exit; killing it\n";
    my $pgrp = getpgrp($pid);
    kill SIGKILL, (defined $pgrp && $pgrp == $pid) ? -$pid : $pid;
    $deadline = time + 3;
    while (time < $deadline) {
        goto done unless _pid_alive($pid);
        sleep 0.02;
    }
    warn "$name - WARNING: nginx process $pid did not exit\n";
    return;

  done:
    1 while waitpid(-$pid, WNOHANG) > 0;    # stray workers of that group
    delete $Started{$pid};
}

sub _stop_running_nginx {
    my $name = shift;
    my $pid = _read_pid_file();
    _stop_nginx($pid, $name) if defined $pid;
    for my $p (keys %Started) {
        _stop_nginx($p, $name);
    }
    _check_valgrind($PrevBlock ? $PrevBlock->name : $name) if $UseValgrind;
}

# once the server has stopped, every process has written its memcheck
# report: one failure per report that holds something
sub _check_valgrind {
    my $name = shift;
    my %bad = LearnValgrind::reports($LogDir);
    for my $f (sort keys %bad) {
        Test::More::fail("$name - valgrind reported errors ($f)");
        Test::More::diag($bad{$f});
    }
}

sub cleanup () {
    $_->() for @CleanupHandlers;
}

sub _cleanup_test {
    my $block = shift;
    $_->($block) for @TestCleanupHandlers;
}

# ---------------------------------------------------------------------------
# server root, user files, nginx.conf
# ---------------------------------------------------------------------------

sub _setup_server_root {
    if (-d $ServRoot) {
        # only remove what we create, so that a mistaken TEST_NGINX_SERVROOT
        # cannot wipe real data
        remove_tree($ConfDir, $CacheDir, $HtmlDir, $LogDir,
                    glob("$ServRoot/*_cache"), glob("$ServRoot/*_temp"));
        rmdir $ServRoot
            or bail_out("Can't remove $ServRoot (not empty?): $!");
    }
    for my $d ($ServRoot, $LogDir, $HtmlDir, $ConfDir) {
        mkdir $d or bail_out("Failed to do mkdir $d: $!\n");
    }
    open my $out, '>', "$HtmlDir/index.html"
        or bail_out("Can't open $HtmlDir/index.html for writing: $!\n");
    print $out '<html><head><title>It works!</title></head>'
             . '<body>It works!</body></html>';
    close $out;
}

sub _touch_gmt {
    my ($path, $stamp, $name) = @_;
    # the `touch -t` format: [[CC]YY]MMDDhhmm[.ss]
    my ($main, $ss) = $stamp =~ /^\s*(\d{8}|\d{10}|\d{12})(?:\.(\d\d))?\s*$/
        or bail_out("$name - bad user_files date \"$stamp\"");
    my @d = $main =~ /(\d\d)/g;
    my ($cc, $yy);
    if (@d == 6) { ($cc, $yy) = splice @d, 0, 2 }
    elsif (@d == 5) { $yy = shift @d; $cc = $yy >= 69 ? 19 : 20 }
    else { my @lt = gmtime; $cc = int((1900 + $lt[5]) / 100); $yy = (1900 + $lt[5]) % 100 }
    my ($mon, $day, $h, $m) = @d;
    my $t = timegm($ss // 0, $m, $h, $day, $mon - 1, $cc * 100 + $yy);
    utime $t, $t, $path or bail_out("$name - cannot set mtime of $path: $!");
}

sub _write_user_files {
    my ($block) = @_;
    my $name  = $block->name;
    my $files = $block->user_files;
    return unless $files;

    if (!ref $files) {
        my @list;
        my $cur;
        for my $line (split /^/m, $files) {
            if ($line =~ />>> (\S+)(?:\s+(.+))?/) {
                push @list, $cur if $cur;
                $cur = [$1, undef, $2];
            } elsif ($cur) {
                $cur->[1] .= $line;
            }
        }
        push @list, $cur if $cur;
        $files = \@list;
    } elsif (ref $files ne 'ARRAY') {
        bail_out("$name - wrong value type: ", ref $files,
                 ", only scalar or ARRAY are accepted");
    }

    for my $f (@$files) {
        my ($fname, $body, $date) = @$f;
        $body //= '';
        my $path = $fname =~ m{^/} ? $fname : "$HtmlDir/$fname";
        if ($path =~ m{(.*)/}) {
            make_path($1) unless -d $1;
        }
        $body = _expand_env($body, $name);
        open my $out, '>', $path
            or bail_out("$name - Cannot open $path for writing: $!\n");
        binmode $out;
        print $out $body;
        close $out;
        _touch_gmt($path, $date, $name) if $date;
    }
}

sub _write_config_file {
    my ($block, $config) = @_;
    my $name = $block->name;

    my $http_config = _expand_env(scalar($block->http_config), $name) // '';
    my $main_config = $block->main_config // '';
    my $post_main   = _expand_env(scalar($block->post_main_config), $name) // '';
    my $err_log     = $block->error_log_file || $ErrLogFile;
    my $server_name = $block->server_name // $ServerName;
    $config //= '';

    if ($LoadModules) {
        my @mods = map { "load_module $_;" } grep { length } split /\s+/, $LoadModules;
        $main_config = join(' ', @mods, $main_config) if @mods;
    }
    $main_config = _expand_env($main_config, $name);
    $err_log     = _expand_env($err_log, $name);
    chomp(my $err_log_path = $err_log);

    (my $quoted_server_name = $server_name) =~ s/\\/\\\\/g;
    $quoted_server_name =~ s/'/\\'/g;

    my (undef, $V) = _nginx_V();
    my @temp;
    for my $m (qw(fastcgi scgi uwsgi)) {
        push @temp, "${m}_temp_path $ServRoot/${m}_temp;"
            unless $V =~ /--without-http_${m}_module/;
    }
    unshift @temp, "proxy_temp_path $ServRoot/proxy_temp;"
        unless $http_config =~ /\bproxy_temp_path\b/;
    unshift @temp, "client_body_temp_path $ServRoot/client_body_temp;"
        unless $http_config =~ /\bclient_body_temp_path\b/;

    my $conf = '';
    $conf .= "worker_processes  $Workers;\n";
    $conf .= "daemon $DaemonEnabled;\n";
    $conf .= "master_process $MasterProcessEnabled;\n";
    $conf .= "error_log $err_log_path $LogLevel;\n";
    $conf .= "pid       $PidFile;\n";
    $conf .= "env $_;\n" for qw(LD_PRELOAD LD_LIBRARY_PATH ASAN_OPTIONS);
    for my $v (@EnvToNginx) {
        $conf .= "env " . ($v =~ /\s/ ? "'$v'" : $v) . ";\n";
    }
    $conf .= "\n$main_config\n\n";
    $conf .= "http {\n";
    $conf .= "    access_log $AccLogFile;\n";
    $conf .= "    $_\n" for @temp;
    $conf .= "\n    default_type text/plain;\n";
    $conf .= "    keepalive_timeout  68000ms;\n\n";
    $conf .= "$http_config\n";
    $conf .= "    server {\n";
    $conf .= "        listen          $ServerAddr:$ServerPort;\n";
    $conf .= "        server_name     '$quoted_server_name';\n";
    $conf .= "        client_max_body_size 30M;\n\n";
    $conf .= "        # Begin preamble config...\n$ConfigPreamble\n";
    $conf .= "        # End preamble config...\n\n";
    $conf .= "        # Begin test case config...\n$config\n";
    $conf .= "        # End test case config.\n\n";
    if (!$NoRootLocation) {
        $conf .= "        location / {\n";
        $conf .= "            root $HtmlDir;\n";
        $conf .= "            index index.html index.htm;\n";
        $conf .= "        }\n";
    }
    $conf .= "    }\n}\n\n$post_main\n\n";
    $conf .= "events {\n    accept_mutex off;\n";
    $conf .= "    worker_connections  $WorkerConnections;\n}\n";
    if (defined $WorkerUser) {
        $conf .= "user $WorkerUser;\n";
    } elsif ($> == 0) {
        $conf .= "user root;\n";
    }

    open my $out, '>', $ConfFile
        or bail_out("Can't open $ConfFile for writing: $!\n");
    print $out $conf;
    close $out;
}

# Run the nginx command line; it daemonizes, so this returns quickly.
# Returns ($wait_status, $stderr_text).
sub _exec_nginx {
    my ($block) = @_;
    my @cmd = ($NginxBinary);
    # -e (early error log) exists since nginx 1.19.5; with it nothing at all
    # is written outside the server root (this nginx's default is stderr).
    push @cmd, '-e', $ErrLogFile if $NginxVersion >= 1.019005;
    push @cmd, '-p', "$ServRoot/", '-c', $ConfFile;
    @cmd = LearnValgrind::wrap($LogDir, @cmd) if $UseValgrind;
    warn "starting: @cmd\n" if $Verbose;

    my $err = File::Temp->new(TEMPLATE => 'tnshimXXXXXX', TMPDIR => 1);
    my $pid = fork;
    bail_out("fork() failed: $!") unless defined $pid;
    if ($pid == 0) {
        $InChild = 1;
        open STDIN,  '<', '/dev/null';
        open STDOUT, '>', '/dev/null';
        if (defined $block->suppress_stderr) {
            open STDERR, '>', '/dev/null';
        } else {
            open STDERR, '>&', $err;
        }
        { no warnings "exec"; exec { $cmd[0] } @cmd; }
        POSIX::_exit(127);
    }
    my $status;
    while (1) {
        my $r = waitpid($pid, 0);
        if ($r == $pid) { $status = $?; last }
        if ($r == -1 && $! != EINTR) { $status = -1; last }
    }
    my $text = do { local $/; open my $in, '<', $err->filename; <$in> } // '';
    return ($status, $text);
}

sub _wait_for_pid_file {
    my $deadline = time + _slow($Timeout);
    while (1) {
        my $pid = _read_pid_file();
        return $pid if defined $pid && _pid_alive($pid);
        return undef if time > $deadline;
        sleep 0.005;
    }
}

# Start nginx for a block; on success remember its pid.  Failures that look
# like a busy port are retried for up to 30 seconds, like the real module.
sub _start_nginx {
    my ($block) = @_;
    my $name = $block->name;
    my $waited = 0;
    my $i = 0;
    while (1) {
        $ErrLogPos = 0;
        my ($status, $stderr) = _exec_nginx($block);
        if ($status == 0) {
            my $pid = _wait_for_pid_file();
            if (defined $pid) {
                $Started{$pid} = 1;
            } else {
                warn "$name - WARNING: nginx started but $PidFile did not appear\n";
            }
            return;
        }
        my $retry = $stderr !~ /\[emerg\]/ || $stderr =~ /Address already in use|bind\(\)/;
        if ($retry && $waited < 30) {
            my $delay = min(1, 0.1 * ++$i);
            sleep $delay;
            $waited += $delay;
            next;
        }
        Test::More::diag($stderr) if length $stderr;
        bail_out("$name - Cannot start nginx using command \"$NginxBinary -p $ServRoot/ -c $ConfFile\" (status code $status).");
    }
}

# ---------------------------------------------------------------------------
# the block runner
# ---------------------------------------------------------------------------

sub run_tests () {
    $NginxVersion = _get_nginx_version();
    $ENV{TEST_NGINX_SERVER_PORT} = $ServerPort
        unless defined $ENV{TEST_NGINX_SERVER_PORT};
    _become_subreaper();
    for my $sig (qw(INT TERM HUP)) {
        next if defined $SIG{$sig} && $SIG{$sig} ne 'DEFAULT';
        $SIG{$sig} = sub { warn "caught SIG$sig, stopping nginx\n"; exit 1 };
    }

    my @blocks = Test::Base::blocks();
    @blocks = shuffle @blocks unless $NoShuffle;
    for my $block (@blocks) {
        $_->($block) for @BlockPreprocessors;
        $block->set_value('name', "$0 " . $block->name);
        run_test($block);
        _cleanup_test($block);
        $PrevBlock = $block;
    }
    cleanup();
}

sub _check_prev_block_shutdown_error_log {
    my $block = $PrevBlock;
    return unless $block;
    return unless defined $block->shutdown_error_log
               || defined $block->no_shutdown_error_log;
    return if $NoClean;
    _check_log_patterns($block, 'shutdown_error_log', scalar($block->shutdown_error_log),
                        'error.log', undef, \&_error_log_data, '');
    _check_log_absent($block, 'no_shutdown_error_log', scalar($block->no_shutdown_error_log),
                      'error.log', undef, \&_error_log_data, '');
    undef $PrevBlock;
}

sub _skip_spec {
    my ($block) = @_;
    my $name = $block->name;

    if (defined(my $spec = $block->skip_eval)) {
        my ($n, $code) = $spec =~ /^\s*(\d+)\s*:\s*(.*)/s
            or bail_out("$name - Invalid --- skip_eval spec: $spec");
        my $skip = eval $code;
        bail_out("$name - skip_eval - failed to eval the Perl code \"$code\": $@") if $@;
        return ($n, 'skip_eval') if $skip;
    }

    if (defined(my $spec = $block->skip_nginx)) {
        my ($n, $op, @v) = $spec =~ m{^\s*(\d+)\s*:\s*([<>]=?)\s*(\d+)\.(\d+)\.(\d+)(?:\s*:\s*(.*))?\s*$}
            or bail_out("$name - Invalid --- skip_nginx spec: $spec");
        my $reason = $v[3] || "nginx version $op $v[0].$v[1].$v[2]";
        return ($n, $reason) if eval "$NginxVersion $op " . _canon_version(@v);
    } elsif (defined(my $spec2 = $block->skip_nginx2)) {
        my @m = $spec2 =~ m{^\s*(\d+)\s*:\s*([<>]=?)\s*(\d+)\.(\d+)\.(\d+)\s*(or|and)\s*([<>]=?)\s*(\d+)\.(\d+)\.(\d+)(?:\s*:\s*(.*))?\s*$}
            or bail_out("$name - Invalid --- skip_nginx2 spec: $spec2");
        my $a = eval "$NginxVersion $m[1] " . _canon_version(@m[2 .. 4]);
        my $b = eval "$NginxVersion $m[6] " . _canon_version(@m[7 .. 9]);
        return ($m[0], $m[10] || 'various reasons')
            if $m[5] eq 'or' ? ($a || $b) : ($a && $b);
    }
    return;
}

# Sections this shim implements, or accepts because they change nothing
# here.  Any other section name (a typo, or a feature of the real module
# that the shim lacks: http2, curl, stap, tcp_listen, udp_listen, ...) makes
# the block fail instead of being silently ignored.
my %KnownSections = map { $_ => 1 } qw(
    ONLY SKIP LAST
    config http_config main_config post_main_config server_name
    init post_setup_server_root user_files must_die suppress_stderr
    log_level error_log_file
    request request_eval raw_request raw_request_middle_delay
    pipelined_requests more_headers server_addr_for_client timeout
    abort shutdown ignore_response wait
    error_code error_code_like response_headers response_headers_like
    raw_response_headers_like raw_response_headers_unlike
    response_body response_body_eval response_body_like response_body_unlike
    response_body_filters response_body_json_sort charset write_resp_body_file
    error_log no_error_log grep_error_log grep_error_log_out
    access_log no_access_log shutdown_error_log no_shutdown_error_log
    skip_eval skip_nginx skip_nginx2 todo
    no_check_leak no_mockeagain
);

sub _unknown_sections {
    my ($block) = @_;
    my $order = $block->{_section_order};
    my @names = ref $order eq 'ARRAY' && ref $order->[0] eq 'ARRAY' ? @{ $order->[0] } : ();
    return grep { !$KnownSections{$_} } @names;
}

sub run_test ($) {
    my ($block) = @_;
    return if defined $block->SKIP;

    my $name = $block->name;
    $RandPorts = {};

    if (my @bad = _unknown_sections($block)) {
        Test::More::fail("$name - section \"--- $_\" is unknown to the "
                         . "Test::Nginx::Socket shim in t/lib/shim") for @bad;
        return;
    }

    local $LogLevel = $block->log_level ? $block->log_level : $LogLevel;
    chomp $LogLevel;

    my $config = _expand_env(scalar($block->config), $name);
    my ($skip_n, $skip_reason) = _skip_spec($block);

    my ($todo_n, $todo_reason);
    if (defined(my $todo = $block->todo)) {
        ($todo_n, $todo_reason) = $todo =~ /^\s*(\d+)\s*:\s*(.*)/s
            or bail_out("$name - Invalid --- todo spec: $todo");
    }

    my $should_restart = 1;
    if (!defined $config) {
        bail_out("$name - No '--- config' section specified and could not get previous one.")
            unless defined $PrevConfig;
        $should_restart = 0;    # reuse the running server
    } elsif (!$ForceRestartOnTest && defined $PrevConfig
             && $config eq $PrevConfig && _pid_alive(_read_pid_file()))
    {
        $should_restart = 0;
    }

    if (!$skip_n && $should_restart) {
        $PrevConfig = $config;
        _stop_running_nginx($name);
        _check_prev_block_shutdown_error_log();

        _setup_server_root();
        if (defined(my $code = $block->post_setup_server_root)) {
            eval $code;
            bail_out("$name - post_setup_server_root failed: $@") if $@;
        }
        _write_user_files($block);
        _write_config_file($block, $config);

        if (defined $block->must_die) {
            _run_must_die($block);
            return;
        }
        _start_nginx($block);
        sleep $Sleep;
    }

    if (defined(my $init = $block->init)) {
        eval $init;
        bail_out("$name - init failed: $@") if $@;
    }

    $ErrLogPos = 0;
    for my $i (1 .. $RepeatEach) {
        _write_user_files($block) if $i > 1;
        if ($skip_n) {
            SKIP: { Test::More::skip("$name - $skip_reason", $skip_n); }
        } elsif (defined $todo_n) {
            TODO: { Test::More::todo_skip("$name - $todo_reason", $todo_n); }
        } else {
            _run_block_requests($block, $i - 1);
        }
    }

    if (my $total = $ENV{TEST_NGINX_ERROR_LOG}) {
        if (-s $ErrLogFile && open my $out, '>>', $total) {
            print $out "\n=== $0 $name\n";
            if (open my $in, '<', $ErrLogFile) {
                local $/;
                print $out scalar <$in>;
            }
            close $out;
        }
    }
}

sub _run_must_die {
    my ($block) = @_;
    my $name = $block->name;
    my $must_die = $block->must_die;

    bail_out("$name - Cannot find the nginx executable \"$NginxBinary\"")
        unless _can_run($NginxBinary);

    for my $i (0 .. $RepeatEach - 1) {
        $ErrLogPos = 0;
        my ($status, $stderr) = _exec_nginx($block);
        Test::More::note("nginx said: $stderr") if length $stderr;

        my $exit_code = $status == -1 ? undef : $status >> 8;
        if ($status == -1 || $exit_code == 127) {
            Test::More::fail("$name - failed to execute the nginx command line");
        } elsif ($status & 128) {
            Test::More::fail("$name - nginx core dumped");
        } elsif (looks_like_number($must_die)) {
            is($exit_code, $must_die, "$name - die with the expected exit code");
        } else {
            Test::More::isnt($status, 0, "$name - die as expected");
        }

        _check_error_log($block, undef, $i, 0);

        if ($status == 0) {
            warn "WARNING: $name - nginx must die but it does not; killing it (req $i)\n";
            my $pid = _wait_for_pid_file();
            if (defined $pid) {
                $Started{$pid} = 1;
                _stop_nginx($pid, $name);
            }
        }
    }
}

# ---------------------------------------------------------------------------
# building requests
# ---------------------------------------------------------------------------

sub _parse_more_headers {
    my ($in) = @_;
    my ($out, $chunked) = ('', 0);
    for my $h (split /\n+/, $in // '') {
        next if $h =~ /^\s*#/;
        my ($k, $v) = split /:\s*/, $h, 2;
        $v //= '';
        $chunked = 1 if lc($k) eq 'transfer-encoding' && $v eq 'chunked';
        $out .= "$k: $v\r\n";
    }
    return ($out, $chunked);
}

# Turn "METHOD [URI [VERSION]]\n[body]" (split into packets) into a real HTTP
# request, keeping the packet boundaries.  Like the real module: the body is
# stripped of leading/trailing white space when a Content-Length header is
# computed for it (i.e. unless the request is chunked or more_headers already
# has a Content-Length).
sub _build_request {
    my ($name, $hdrs, $chunked, $conn, $packets) = @_;

    my $orig = join '', map { $_ // '' } @$packets;
    my ($line, $eol, $body) = $orig =~ /\A([^\n]*)(\n?)(.*)\z/s;
    if (!defined $line || $line !~ /\S/) {
        bail_out("$name - Request line should be non-empty");
    }
    (my $l = $line) =~ s/^\s+|\s+$//g;
    my @tok = split / +/, $l;
    if (@tok > 3 || $l =~ /[^ \S]/) {
        bail_out("$name - Request line is not valid. Should be 'meth [url [version]]' but got \"$line$eol\".");
    }
    my ($meth, $url, $ver) = @tok;
    $url //= '/';
    $ver //= 'HTTP/1.1';

    my ($lead, $blen) = (0, length $body);
    my $len_header = '';
    if (!$chunked && $body ne '' && $hdrs !~ /(?:^|\n)Content-Length:/) {
        $body =~ /\A(\s*)/;
        $lead = length $1;
        $body =~ s/^\s+|\s+$//gs;
        $blen = length $body;
        $len_header = "Content-Length: $blen\r\n";
    }

    (my $more = $hdrs) =~ s/(?<!\r)\n/\r\n/g;
    my $h = '';
    $h .= "Host: $ServerName\r\n"  unless $more =~ /(?:^|\n)Host:/msi;
    $h .= "Connection: $conn\r\n"   unless $more =~ /(?:^|\n)Connection/msi;
    $h .= "$more$len_header\r\n";

    my $reqline = "$meth $url $ver\r\n";
    my $head = $reqline . $h;
    my $out = $head . $body;

    # map the original packet boundaries onto the new text
    my $hl = length($line) + length($eol);
    my @cuts;
    my $pos = 0;
    for my $p (@$packets[0 .. $#$packets - 1]) {
        $pos += length($p // '');
        my $c;
        if ($pos < $hl) {
            $c = min($pos, length $reqline);
        } else {
            my $off = $pos - $hl - $lead;
            $off = 0 if $off < 0;
            $off = $blen if $off > $blen;
            $c = length($head) + $off;
        }
        push @cuts, $c;
    }
    my @res;
    my $prev = 0;
    for my $c (@cuts, length $out) {
        $c = $prev if $c < $prev;
        push @res, substr($out, $prev, $c - $prev);
        $prev = $c;
    }
    return \@res;
}

sub _headers_for {
    my ($name, $more_headers, $i, $what) = @_;
    if (ref $more_headers eq 'ARRAY') {
        my $h = $more_headers->[$i];
        bail_out("--- more_headers lacks data for the $what") unless defined $h;
        return _parse_more_headers($h);
    }
    return _parse_more_headers($more_headers);
}

# Returns a list of requests; each request is a list of packets
# ({ value => bytes, delay_before => seconds }).
sub _requests_from_block {
    my ($block) = @_;
    my $name = $block->name;
    my @reqs;

    if (defined(my $raw = $block->raw_request)) {
        if (ref $raw eq 'ARRAY') {
            push @reqs, [ map { { value => $_ } } @$raw ];
        } else {
            push @reqs, [ { value => $raw } ];
        }
        return \@reqs;
    }

    my $request;
    if (defined $block->request_eval) {
        Test::More::diag("$name - request_eval DEPRECATED. Use request eval instead.");
        $request = eval $block->request_eval;
        warn $@ if $@;
    } else {
        $request = $block->request;
        if (defined $request && !ref $request) {
            1 while $request =~ s/^\s*\#[^\n]+\s+|^\s+//gs;
        }
    }

    my $more_headers = $block->more_headers || '';

    if (my $reqs = $block->pipelined_requests) {
        bail_out("$name - invalid entries in --- pipelined_requests")
            unless ref $reqs eq 'ARRAY';
        my $all = '';
        for my $i (0 .. $#$reqs) {
            my $r = _expand_env($reqs->[$i], $name);
            my ($hdr, $chunked) = _headers_for($name, $more_headers, $i,
                                               "$i pipelined request");
            my $conn = $i == $#$reqs ? 'close' : 'keep-alive';
            $all .= join '', @{ _build_request($name, $hdr, $chunked, $conn, [$r]) };
        }
        push @reqs, [ { value => $all } ];
        return \@reqs;
    }

    if (!ref $request) {
        my ($hdr, $chunked) = _headers_for($name, $more_headers, 0, 'request');
        my $r = _build_request($name, $hdr, $chunked, 'close', [$request]);
        push @reqs, [ { value => $r->[0] } ];
        return \@reqs;
    }

    bail_out("$name - invalid ---request : MUST be string or array of requests")
        unless ref $request eq 'ARRAY';

    my $i = 0;
    for my $one (@$request) {
        my ($hdr, $chunked) = _headers_for($name, $more_headers, $i, "${i}th request");
        if (!ref $one) {
            my $r = _build_request($name, $hdr, $chunked, 'close', [$one]);
            push @reqs, [ { value => $r->[0] } ];
        } elsif (ref $one eq 'ARRAY') {
            my @vals;
            for my $p (@$one) {
                if (!ref $p) { push @vals, $p }
                elsif (ref $p eq 'HASH') { push @vals, $p->{value} }
                else { bail_out("$name - Invalid syntax. $p should be a string or hash with value.") }
            }
            my $r = _build_request($name, $hdr, $chunked, 'close', \@vals);
            my @pk;
            for my $k (0 .. $#$one) {
                my %p = ref $one->[$k] ? %{ $one->[$k] } : ();
                $p{value} = $r->[$k];
                push @pk, \%p;
            }
            push @reqs, \@pk;
        } else {
            bail_out("$name - Invalid syntax. $one should be a string or an array of packets.");
        }
        $i++;
    }
    return \@reqs;
}

# ---------------------------------------------------------------------------
# the HTTP client
# ---------------------------------------------------------------------------

sub _connect {
    my ($block, $timeout) = @_;
    my $name = $block->name;
    my $addr = $block->server_addr_for_client // $ServerAddr;
    chomp $addr;
    my $max = $ConnectFailures ? 20 : 50;
    for my $try (1 .. $max + 1) {
        my $sock = IO::Socket::INET->new(PeerAddr => $addr,
                                         PeerPort => $ServerPortForClient,
                                         Proto => 'tcp', Timeout => $timeout);
        return $sock if $sock;
        my $err = $!;
        last if $try > $max;
        my $wait = min(1, ($Sleep + $Sleep * $try) * $try / 2);
        if ($wait >= 0.6) {
            warn "$name - Can't connect to $addr:$ServerPortForClient: $err\n"
               . "\tRetry connecting after $wait sec\n";
        }
        sleep $wait;
    }
    my $msg = "$name - Can't connect to $addr:$ServerPortForClient: $! (aborted)\n";
    if (++$ConnectFailures < 3) {
        Test::More->builder->no_ending(1);
        Test::More::fail($msg);
        return undef;
    }
    bail_out($msg);
}

# Send one request (a list of packets) on a new connection and read the
# response until the server closes the connection or the timeout expires.
sub _send_request {
    my ($packets, $middle_delay, $timeout, $block) = @_;
    my $name = $block->name;
    my $all = join '', map { $_->{value} // '' } @$packets;
    my $head_req = $all =~ /^\s*HEAD\s+/ ? 1 : 0;

    my $sock = _connect($block, $timeout) or return (undef, $head_req);
    $sock->blocking(0);
    binmode $sock;
    local $SIG{PIPE} = 'IGNORE';

    my @todo = @$packets;
    my $cur = shift @todo;
    my $buf = $cur ? $cur->{value} // '' : '';
    my $off = 0;
    my $writing = 1;
    my $resp = '';

    while (1) {
        my $rs = IO::Select->new($sock);
        my $ws = $writing ? IO::Select->new($sock) : undef;
        my ($r, $w) = IO::Select->select($rs, $ws, undef, $timeout);
        if (!$r && !$w) {
            if ($! == EINTR) { next }
            if (!defined $block->abort) {
                Test::More->builder->no_ending(1);
                Test::More::fail("ERROR: client socket timed out - $name\n");
            }
            last;
        }

        if ($w && @$w && $writing) {
            while ($writing) {
                if ($off < length $buf) {
                    my $n = syswrite($sock, $buf, length($buf) - $off, $off);
                    if (!defined $n) {
                        last if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
                        warn "write failed: $!\n";
                        $writing = 0;
                        last;
                    }
                    $off += $n;
                    next;
                }
                my $next = shift @todo;
                if (!$next) {
                    $writing = 0;
                    if (defined(my $how = $block->shutdown)) {
                        $how = 1 if $how =~ /^\s*$/;
                        shutdown($sock, $how);
                    }
                    last;
                }
                my $delay = defined $next->{delay_before} ? $next->{delay_before}
                                                          : $middle_delay;
                sleep $delay if $delay;
                ($buf, $off) = ($next->{value} // '', 0);
            }
        }

        if ($r && @$r) {
            my $n = sysread($sock, my $chunk, 65536);
            if (!defined $n) {
                next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
                warn "WARNING: $name - HTTP response read failure: $!";
                last;
            }
            last if $n == 0;
            $resp .= $chunk;
        }
    }
    close $sock;
    return ($resp, $head_req);
}

# Returns ($res, $raw_headers, $left_over_bytes).
sub _parse_response {
    my ($name, $raw, $head_req) = @_;
    my $raw_headers = $raw =~ /(.*?\r\n)\r\n/s ? $1 : '';
    my $res = HTTP::Response->parse($raw);
    my $code = $res->code;
    if (defined $code && $code !~ /^\d+$/) {
        $code = undef;
        $res->code(undef);
    }
    return ($res, $raw_headers) if $code && ($code == 304 || $code == 101);

    my $te  = $res->header('Transfer-Encoding');
    my $len = $res->header('Content-Length');
    my $left;

    if (defined $te && $te eq 'chunked') {
        my $body = $res->content // '';
        my $out = '';
        my $p = 0;
        while (1) {
            my $nl = index($body, "\r\n", $p);
            my $sizeline = $nl < 0 ? undef : substr($body, $p, $nl - $p);
            if (!defined $sizeline || $sizeline !~ /^[ \t]*([0-9A-Fa-f]+)[ \t]*(?:;.*)?$/) {
                Test::More->builder->no_ending(1);
                if ($p >= length $body) {
                    Test::More::fail("$name - no last chunk found - $body");
                } else {
                    Test::More::fail("$name - invalid chunked body received: " . substr($body, $p));
                }
                return;
            }
            my $size = hex $1;
            $p = $nl + 2;
            if ($size == 0) {
                # trailers, up to the empty line
                while (1) {
                    my $e = index($body, "\r\n", $p);
                    if ($e < 0) {
                        Test::More->builder->no_ending(1);
                        Test::More::fail("$name - invalid chunked data received (expected CRLF).");
                        return;
                    }
                    my $tl = substr($body, $p, $e - $p);
                    $p = $e + 2;
                    last if $tl eq '';
                }
                $left = substr($body, $p) if $p < length $body;
                last;
            }
            if ($p + $size > length $body) {
                Test::More->builder->no_ending(1);
                Test::More::fail("$name - invalid chunked data received (not enought octets for the data section)");
                return;
            }
            $out .= substr($body, $p, $size);
            $p += $size;
            if (substr($body, $p, 2) ne "\r\n") {
                Test::More->builder->no_ending(1);
                Test::More::fail("$name - invalid chunked data received (expected CRLF).");
                return;
            }
            $p += 2;
        }
        $res->content($out);

    } elsif (defined $len && $len =~ /^\s*\d+\s*$/) {
        my $body = $res->content // '';
        if ($head_req) {
            # no body follows a HEAD response
        } elsif (length $body < $len) {
            warn "WARNING: $name - response body truncated: $len expected, but got ",
                 length $body, "\n";
        } elsif (length $body > $len) {
            $left = substr($body, $len);
            $res->content(substr($body, 0, $len));
        }
    }
    return ($res, $raw_headers, $left);
}

# ---------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------

sub _indexed {
    my ($name, $value, $idx, $need_array) = @_;
    if ($need_array) {
        return $value->[$idx] if ref $value eq 'ARRAY';
        bail_out("$name - You asked for many requests, the expected results should be arrays as well.");
    }
    return $value->[0] if ref $value eq 'ARRAY';
    return $value;
}

sub _check_error_code {
    my ($block, $res, $idx, $need_array) = @_;
    my $name = $block->name;
    my $got = ($res && $res->code) || '';
    if (defined $block->error_code_like) {
        my $pat = _indexed($name, scalar($block->error_code_like), $idx, $need_array);
        Test::More::like($got, qr/$pat/sm, "$name - status code ok");
    } elsif (defined $block->error_code) {
        is($got, _indexed($name, scalar($block->error_code), $idx, $need_array),
           "$name - status code ok");
    } else {
        is($got, 200, "$name - status code ok");
    }
}

sub _check_raw_response_headers {
    my ($block, $raw_headers, $idx, $need_array) = @_;
    my $name = $block->name;
    if (defined $block->raw_response_headers_like) {
        my $pat = _indexed($name, scalar($block->raw_response_headers_like), $idx, $need_array);
        Test::More::like($raw_headers, qr/$pat/s, "$name - raw resp headers like");
    }
    if (defined $block->raw_response_headers_unlike) {
        my $pat = _indexed($name, scalar($block->raw_response_headers_unlike), $idx, $need_array);
        Test::More::unlike($raw_headers, qr/$pat/s, "$name - raw resp headers unlike");
    }
}

sub _parse_header_spec {
    my ($text) = @_;
    my @list;
    for my $line (split /\n/, $text // '') {
        $line =~ s/^\s+|\s+$//g;
        next if $line eq '';
        if ($line =~ s/^!\s*//) {
            push @list, [$line, undef];
        } else {
            my ($k, $v) = split /\s*:\s*/, $line, 2;
            push @list, [$k, $v];
        }
    }
    return \@list;
}

sub _check_response_headers {
    my ($block, $res, $raw_headers, $idx, $need_array) = @_;
    my $name = $block->name;
    if (defined $block->response_headers) {
        my $spec = _parse_header_spec(_indexed($name, scalar($block->response_headers), $idx, $need_array));
        for my $kv (@$spec) {
            my ($key, $val) = @$kv;
            if (!defined $val) {
                Test::More::unlike($raw_headers, qr/^\s*\Q$key\E\s*:/ms,
                                   "$name - header $key not present in the raw headers");
                next;
            }
            $val =~ s/\$ServerPort\b/$ServerPort/g;
            $val =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
            my $got = $res ? $res->header($key) : undef;
            is($got // '', $val, "$name - header $key ok");
        }
    } elsif (defined $block->response_headers_like) {
        my $spec = _parse_header_spec(_indexed($name, scalar($block->response_headers_like), $idx, $need_array));
        for my $kv (@$spec) {
            my ($key, $pat) = @$kv;
            my $got = $res ? $res->header($key) : undef;
            Test::More::like($got // '', qr/^$pat$/, "$name - header $key like ok");
        }
    }
}

my %BodyFilters = (
    md5_hex  => sub { require Digest::MD5; Digest::MD5::md5_hex($_[0]) },
    sha1_hex => sub { require Digest::SHA; Digest::SHA::sha1_hex($_[0]) },
    uc       => sub { uc $_[0] },
    lc       => sub { lc $_[0] },
    ucfirst  => sub { ucfirst $_[0] },
    lcfirst  => sub { lcfirst $_[0] },
    length   => sub { length $_[0] },
);

sub _transform_response_body {
    my ($block, $res, $idx) = @_;
    return unless $res && defined $res->content;
    my $filters = scalar($block->response_body_filters);
    return unless defined $filters;
    my $name = $block->name;

    if (!ref $filters) {
        (my $f = $filters) =~ s/^\s+|\s+$//g;
        $filters = [split /\s+/, $f];
    } elsif (ref $filters ne 'ARRAY') {
        $filters = [$filters];
    }
    if (ref $filters->[0] eq 'ARRAY') {
        $filters = $filters->[$idx];
        bail_out("$name - the ---response_body_filters two-dimensional array "
                 . "unmatch the specified request($idx)") unless defined $filters;
    }
    my $content = $res->content;
    for my $f (ref $filters eq 'ARRAY' ? @$filters : $filters) {
        if (ref $f eq 'CODE') {
            $content = $f->($content);
        } elsif (!ref $f && $BodyFilters{$f}) {
            $content = $BodyFilters{$f}->($content);
        } else {
            bail_out("$name - unknown filter, \"$f\", specified in the --- response_body_filters section");
        }
    }
    $res->content($content);
}

sub _check_response_body {
    my ($block, $res, $idx, $rep, $need_array) = @_;
    my $name = $block->name;

    if (defined(my $file = scalar($block->write_resp_body_file))) {
        if ($res && open my $out, '>', $file) {
            print $out $res->content // '';
            close $out;
        }
    }

    my $content = $res ? $res->content : undef;

    if (defined $block->response_body || defined $block->response_body_eval) {
        if (defined $block->response_body_json_sort && defined $content) {
            require JSON::PP;
            my $js = JSON::PP->new->canonical(1);
            my $obj;
            $content = $js->encode($obj) . "\n"
                if eval { $obj = $js->loose(1)->decode($content); 1 };
        }

        my $expected;
        if (scalar($block->response_body_eval)) {
            Test::More::diag("$name - response_body_eval is DEPRECATED. Use response_body eval instead.");
            $expected = eval _indexed($name, scalar($block->response_body_eval), $idx, $need_array);
            warn $@ if $@;
        } else {
            $expected = _indexed($name, scalar($block->response_body), $idx, $need_array);
        }

        if (my $cs = scalar($block->charset)) {
            chomp $cs;
            Encode::from_to($expected, 'UTF-8', $cs);
        }

        if (defined $expected && !ref $expected) {
            $expected =~ s/\$ServerPort\b/$ServerPort/g;
            $expected =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
            $expected = _expand_env($expected, $name);
        }

        my $desc = "(repeated req $rep, req $idx)";
        if (ref $expected) {
            Test::More::like($content, $expected, "$name - response_body - like $desc");
        } elsif ($NoLongString) {
            is($content, $expected, "$name - response_body - response is expected $desc");
        } else {
            Test::LongString::is_string($content, $expected,
                                        "$name - response_body - response is expected $desc");
        }

    } elsif (defined $block->response_body_like || defined $block->response_body_unlike) {
        my ($type, $pats) = defined $block->response_body_like
            ? ('like', scalar($block->response_body_like))
            : ('unlike', scalar($block->response_body_unlike));
        my $pat = _indexed($name, $pats, $idx, $need_array);
        $pat =~ s/\$ServerPort\b/$ServerPort/g;
        $pat =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
        my $summary = _trim_summary($content);
        my $desc = "$name - response_body_$type - response is expected ($summary)";
        if ($type eq 'like') {
            Test::More::like($content, qr/$pat/s, $desc);
        } else {
            Test::More::unlike($content, qr/$pat/s, $desc);
        }
    }

    for my $check (@ResponseBodyChecks) {
        $check->($block, $content, $idx, $rep, 0);
    }
}

sub _error_log_data {
    # the log phase runs after the connection is closed; give it a moment
    sleep $Sleep * 3;
    open my $in, '<', $ErrLogFile or return undef;
    seek $in, $ErrLogPos, 0 if !$CheckAccumErrLog && $ErrLogPos > 0;
    my @lines = <$in>;
    $ErrLogPos = tell $in unless $CheckAccumErrLog;
    close $in;
    return \@lines;
}

sub _access_log_data {
    sleep $Sleep * 3;
    open my $in, '<', $AccLogFile or die "open $AccLogFile failed: $!";
    my @lines = <$in>;
    close $in;
    return \@lines;
}

sub _pattern_list {
    my $pats = shift;
    if (!ref $pats) {
        chomp $pats;
        return [ split /\n+/, $pats ];
    }
    return [$pats] if ref $pats eq 'Regexp';
    return [@$pats];
}

sub _line_matches {
    my ($line, $pat) = @_;
    return ref $pat ? $line =~ /$pat/ : $line =~ /\Q$pat\E/;
}

# "--- error_log"-like: every pattern must match some line
sub _check_log_patterns {
    my ($block, $what, $pats, $file, $rep, $reader, $lines) = @_;
    return unless defined $pats;
    my $name = $block->name;
    my $suffix = defined $rep ? " (req $rep)" : '';
    my @pats = @{ _pattern_list($pats) };
    my $data = $reader->() || [];
    for my $line (@$data) {
        for my $pat (@pats) {
            next unless defined $pat;
            if (_line_matches($line, $pat)) {
                Test::More::pass("$name - pattern \"$pat\" matches a line in $file$suffix");
                undef $pat;
            }
        }
    }
    for my $pat (@pats) {
        next unless defined $pat;
        Test::More::fail("$name - pattern \"$pat\" should match a line in $file$suffix");
    }
    return $data;
}

# "--- no_error_log"-like: no pattern may match any line
sub _check_log_absent {
    my ($block, $what, $pats, $file, $rep, $reader) = @_;
    return unless defined $pats;
    my $name = $block->name;
    my $suffix = defined $rep ? " (req $rep)" : '';
    my @pats = @{ _pattern_list($pats) };
    my $data = $reader->() || [];
    my %found;
    for my $i (0 .. $#$data) {
        my $line = $data->[$i];
        for my $pat (@pats) {
            next unless defined $pat;
            next unless _line_matches($line, $pat);
            Test::More->builder->no_ending(1) if $found{$pat}++;
            my @more = @$data[$i + 1 .. min($i + 9, $#$data - 1)];
            Test::More::fail("$name - pattern \"" . _fmt_str($pat)
                . "\" should not match any line in $file but matches line \""
                . _fmt_str($line) . "\"$suffix\n" . join('', @more));
        }
    }
    for my $pat (@pats) {
        next if !defined $pat || $found{$pat};
        Test::More::pass("$name - pattern \"" . _fmt_str($pat)
                         . "\" does not match a line in $file$suffix");
    }
    return $data;
}

sub _mentions {
    my ($val, $pat) = @_;
    return 0 unless defined $val;
    return $val =~ /\Q$pat\E/ if !ref $val || ref $val eq 'Regexp';
    if (ref $val eq 'ARRAY') {
        for (@$val) { return 1 if _mentions($_, $pat) }
    }
    return 0;
}

sub _check_error_log {
    my ($block, $res, $rep, $need_array) = @_;
    my $name = $block->name;
    my $lines;
    my $reader = sub { $lines ||= _error_log_data() };

    my $grep_pats = $block->grep_error_log;
    if (defined $grep_pats) {
        my $grep_pat = ref $grep_pats eq 'ARRAY' ? $grep_pats->[$rep] : $grep_pats;
        my $expected = $block->grep_error_log_out;
        bail_out("$name - No --- grep_error_log_out defined but --- grep_error_log is defined")
            unless defined $expected;
        $expected = $expected->[$rep] if ref $expected eq 'ARRAY';
        $expected = _expand_env($expected, $name) unless ref $expected;
        my $out = '';
        for my $line (@{ $reader->() || [] }) {
            my $m;
            if (ref $grep_pat) { $m = $& if $line =~ /$grep_pat/ }
            else { $m = $& if $line =~ /\Q$grep_pat\E/ }
            $out .= "$m\n" if defined $m && $m !~ /\n/;
        }
        my $desc = "$name - grep_error_log_out (req $rep)";
        if (ref $expected eq 'Regexp') {
            Test::More::like($out, $expected, $desc);
        } elsif ($NoLongString) {
            is($out, $expected, $desc);
        } else {
            Test::LongString::is_string($out, $expected, $desc);
        }
    } elsif (defined $block->grep_error_log_out) {
        bail_out("$name - No --- grep_error_log defined but --- grep_error_log_out is defined");
    }

    my %warn = map { $_ => 1 } qw(alert crit emerg);
    for my $sec (scalar($block->error_log), scalar($block->no_error_log)) {
        for my $lvl (keys %warn) {
            delete $warn{$lvl} if _mentions($sec, "[$lvl");
        }
    }

    _check_log_patterns($block, 'error_log', scalar($block->error_log), 'error.log', $rep, $reader);
    _check_log_absent($block, 'no_error_log', scalar($block->no_error_log), 'error.log', $rep, $reader);

    if (%warn) {
        for my $line (@{ $reader->() || [] }) {
            for my $lvl (sort keys %warn) {
                warn "WARNING: $name - " . _fmt_str($line) . "\n" if $line =~ /\[$lvl\]/;
            }
        }
    }

    for my $line (@{ $lines || [] }) {
        if ($line =~ /\bAssertion .*?failed\b/) {
            Test::More->builder->no_ending(1);
            (my $l = $line) =~ s/\n\z//;
            Test::More::fail("$name - $l\n");
        }
    }
}

sub _check_access_log {
    my ($block, $rep) = @_;
    my $lines;
    my $reader = sub { $lines ||= _access_log_data() };
    _check_log_patterns($block, 'access_log', scalar($block->access_log), 'access.log', $rep, $reader);
    _check_log_absent($block, 'no_access_log', scalar($block->no_access_log), 'access.log', $rep, $reader);
}

sub _run_block_requests {
    my ($block, $rep) = @_;
    my $name = $block->name;

    my $reqs = _requests_from_block($block);
    bail_out("$name - request empty") unless @$reqs;

    my $timeout = _slow(_parse_time(scalar($block->timeout)) // $Timeout);
    my $middle_delay = _parse_time(scalar($block->raw_request_middle_delay));
    my $pipelined = scalar($block->pipelined_requests);
    my $need_array = $pipelined ? 1 : @$reqs > 1;
    my $res;
    my $idx = 0;

    for my $ri (0 .. $#$reqs) {
        my ($raw, $head_req) = _send_request($reqs->[$ri], $middle_delay, $timeout, $block);
        $raw //= '';
        my $n = $pipelined ? scalar @$pipelined : 0;

        while (1) {
            my ($raw_headers, $left);
            if (!defined $block->ignore_response) {
                ($res, $raw_headers, $left) = _parse_response($name, $raw, $head_req);
                $raw_headers //= '';
            }
            if ($n) {
                $raw = $left // '';
                $n--;
            } elsif (defined $left && length $left) {
                (my $l = $left) =~ s/([\0-\037\200-\377])/sprintf('\x{%02x}', ord $1)/eg;
                warn "WARNING: $name - unexpected extra bytes after last chunk in response: \"$l\"\n";
            }

            if (!defined $block->ignore_response) {
                _check_error_code($block, $res, $idx, $need_array);
                _check_raw_response_headers($block, $raw_headers, $idx, $need_array);
                _check_response_headers($block, $res, $raw_headers, $idx, $need_array);
                _transform_response_body($block, $res, $idx);
                _check_response_body($block, $res, $idx, $rep, $need_array);
            }

            if ($n || $ri < $#$reqs) {
                sleep _parse_time(scalar($block->wait)) if scalar($block->wait);
                _check_error_log($block, $res, $rep, $need_array);
                _check_access_log($block, $rep) unless defined $block->ignore_response;
            }
            $idx++;
            last unless $n;
        }
    }

    sleep _parse_time(scalar($block->wait)) if scalar($block->wait);
    _check_error_log($block, $res, $rep, $need_array);
    _check_access_log($block, $rep) unless defined $block->ignore_response;
}

END {
    return if $InChild;
    local $?;
    cleanup();
    if (!$NoClean) {
        _stop_running_nginx('END');
    }
    _check_prev_block_shutdown_error_log();
    if ($Randomize && -d $ServRoot && $ServRoot =~ m{/t/servroot_\d+$}) {
        remove_tree($ServRoot);
    }
}

1;
