package TestLearn;

# Loaded by every suite before Test::Nginx::Socket:
#
#     use lib 't/lib';
#     use TestLearn;
#     use Test::Nginx::Socket 'no_plan';
#
# Uses the real Test::Nginx::Socket when it is installed (normal @INC,
# PERL5LIB or prove -I), else the shim in t/lib/shim.  TEST_LEARN_SHIM=1
# forces the shim even where the real one is installed.
#
# Environment defaults it provides (never overriding what is already set):
#   TEST_NGINX_BINARY        /usr/sbin/nginx when no `nginx` is on PATH
#   TEST_NGINX_LOAD_MODULES  <repo>/build/ngx_http_learn_module.so if built
#   TEST_NGINX_HTML_DIR      the html/ directory of the server root, so that
#                            configs may use $TEST_NGINX_HTML_DIR with both
#                            the real module and the shim

use strict;
use warnings;

use File::Basename ();
use File::Spec ();
use Cwd ();

our $UsingShim;    # set in BEGIN below; no initializer here (it would run later)
our $LibDir;
our $RepoRoot;

BEGIN {
    $LibDir   = File::Basename::dirname(Cwd::abs_path(__FILE__));
    $RepoRoot = Cwd::abs_path("$LibDir/../..");

    if (!defined $ENV{TEST_NGINX_BINARY}) {
        my $on_path = grep { length && -x "$_/nginx" } split /:/, $ENV{PATH} // '';
        $ENV{TEST_NGINX_BINARY} = '/usr/sbin/nginx'
            if !$on_path && -x '/usr/sbin/nginx';
    }

    if (!defined $ENV{TEST_NGINX_LOAD_MODULES}) {
        my $so = "$RepoRoot/build/ngx_http_learn_module.so";
        $ENV{TEST_NGINX_LOAD_MODULES} = $so if -f $so;
    }

    my $loaded = 0;
    if (!$ENV{TEST_LEARN_SHIM}) {
        $loaded = eval { require Test::Nginx::Socket; 1 };
        if (!$loaded) {
            my $err = $@;
            if ($err !~ m{^Can't locate Test/Nginx/Socket\.pm in \@INC}) {
                warn "TestLearn: the installed Test::Nginx::Socket failed "
                   . "to load, using t/lib/shim instead:\n$err";
            }
            # forget a half-loaded real module so the shim can be required
            delete $INC{$_} for grep { m{^Test/Nginx/} } keys %INC;
        }
    }

    if (!$loaded) {
        unshift @INC, "$LibDir/shim";
        require Test::Nginx::Socket;
        $UsingShim = 1;
    }

    $ENV{TEST_NGINX_HTML_DIR} = Test::Nginx::Socket::html_dir()
        unless defined $ENV{TEST_NGINX_HTML_DIR};
}

sub import {
    my $pkg = caller;
    no strict 'refs';
    *{"${pkg}::learn_module_path"} = \&learn_module_path;
    *{"${pkg}::using_shim"}        = \&using_shim;
}

# path of the module under test (whether or not it was built)
sub learn_module_path { "$RepoRoot/build/ngx_http_learn_module.so" }

# true when the suite runs on t/lib/shim rather than the real Test::Nginx
sub using_shim { $UsingShim ? 1 : 0 }

1;
