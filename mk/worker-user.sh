#!/bin/sh
# mk/worker-user.sh PATH...
#
# Who the workers of an nginx started from this checkout run as.  Prints
# the "user" directive to give nginx (with -g or in its config), or
# nothing, and one line on stderr saying which and why.
#
# nginx started as root runs its workers as nobody (group nogroup, the
# packaged binary's default).  They must write the checkpoint and temp
# directories and read the device backend next to the module: a checkout
# under a directory closed to others (/root is 0700 on Debian, so is a
# mktemp -d folder) keeps them out.  Each PATH is a directory the workers
# write or a file they read.  When nobody can reach all of them it stays
# the worker user; otherwise the workers run as root, as the ones
# Test::Nginx starts as root do (it writes "user root;").  Not root: nginx
# cannot change user and the workers run as the caller.

if [ "$(id -u)" != 0 ]; then
    echo "workers run as $(id -un) (nginx started without root keeps its user)" >&2
    exit 0
fi

for p in "$@"; do
    if ! setpriv --reuid=nobody --regid=nogroup --clear-groups \
            sh -c 'if [ -d "$1" ]; then [ -w "$1" ] && [ -x "$1" ];
                   else [ -r "$1" ]; fi' sh "$p" 2>/dev/null; then
        echo "workers run as root: nobody cannot reach $p" \
             "(a directory above it is closed to others)" >&2
        echo "user root;"
        exit 0
    fi
done

echo "workers run as nobody (nginx's default under root): it reaches $*" >&2
