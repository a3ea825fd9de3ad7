#!/usr/bin/env bash
# Start the loopback services the tests and the local stack use, if they are
# not running. Never fails on a service
# that is not installed; the tests that need it say so.
set -u
up() { timeout 2 bash -c "</dev/tcp/127.0.0.1/$1" 2>/dev/null; }
wait_port() { for _ in $(seq 1 "${2:-30}"); do up "$1" && return 0; sleep 1; done; return 1; }

if ! up 3306 && command -v mariadbd >/dev/null; then
    echo "services: starting MariaDB"
    mkdir -p /run/mysqld; chown mysql:mysql /run/mysqld 2>/dev/null || true
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
    wait_port 3306 30 || echo "services: MariaDB did not open 3306" >&2
fi
if ! up 5672 && command -v rabbitmq-server >/dev/null; then
    echo "services: starting RabbitMQ"
    rabbitmq-server -detached
    wait_port 5672 60 || echo "services: RabbitMQ did not open 5672" >&2
fi
if ! up 6379 && command -v redis-server >/dev/null; then
    echo "services: starting Redis"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
        --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
    wait_port 6379 10 || echo "services: Redis did not open 6379" >&2
fi
exit 0
