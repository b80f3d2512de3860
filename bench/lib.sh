# Sourced by the bench scripts that start nginx.

# wait_listening PORT...: until 127.0.0.1:PORT accepts, for each (10 s at
# most): the master listens before it forks its workers, and the kernel
# queues connections until one accepts
wait_listening() {
    local p _
    for p in "$@"; do
        for _ in $(seq 200); do
            if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
                continue 2
            fi
            sleep 0.05
        done
        echo "nothing listens on 127.0.0.1:$p" >&2
        return 1
    done
}

# median VALUE...: the middle one of the values (the upper of two)
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# worker_ticks: the CPU ticks (user + system) the workers of the nginx
# whose pid is in $PREFIX/logs/nginx.pid have used so far
worker_ticks() {
    local t=0 p
    for p in $(pgrep -P "$(cat "$PREFIX/logs/nginx.pid")"); do
        t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
    done
    echo "$t"
}
