#!/bin/bash
# Tests of nxc-agent that run on a development machine without touching it.
#
#   Tests/agent/run.sh PATH/TO/nxc-agent
#
# Part 1 runs the agent with NXC_AGENT_ROOT=<temp dir>: every system path
# (/proc, /sys, /etc, /run, /root) is read and written under that directory,
# and sethostname/ip/ssh-keygen/systemctl are only logged ("would run").
# nxc.deployment_url is served by python3 -m http.server on 127.0.0.1 (and a
# few malformed answers by a small python3 socket server), each started in
# the background and stopped by its PID.
# Part 2, when run as root where unshare(1) works, runs `boot` for real inside
# private mount, UTS, network and PID namespaces, over tmpfs copies of /etc,
# /root and /run, with a veth pair as the node's interface and a stand-in
# systemctl: it checks that the hostname, addresses, routes and SSH host keys
# really are set, and (with /usr/bin/python3) that a deployment is fetched
# over the network nxc.if= and nxc.route= set up. Nothing outside those
# namespaces changes.
# Exit status: 0 if every check passed.
set -u

agent_binary=${1:?usage: run.sh PATH/TO/nxc-agent}
agent_binary=$(readlink -f "$agent_binary")
[ -x "$agent_binary" ] || { echo "not executable: $agent_binary" >&2; exit 2; }

work=$(mktemp -d /tmp/nxc-agent-test.XXXXXX)
# Background servers, stopped by PID (also when the script is interrupted).
server_pids=()
stop_servers() {
    local pid
    for pid in "${server_pids[@]}"; do kill "$pid" 2> /dev/null; wait "$pid" 2> /dev/null; done
    server_pids=()
}
trap 'stop_servers; rm -rf "$work"' EXIT
failures=0
checks=0

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { checks=$((checks + 1)); }
check() { # check DESCRIPTION COMMAND...
    local description=$1; shift
    if "$@"; then pass; else fail "$description"; fi
}
check_content() { # check_content FILE EXPECTED
    local actual
    if ! actual=$(cat "$1" 2>/dev/null); then fail "$1 is missing"; return; fi
    if [ "$actual" == "$2" ]; then pass; else fail "$1 is:"$'\n'"$actual"$'\n'"expected:"$'\n'"$2"; fi
}
check_mode() { # check_mode PATH MODE
    local mode
    mode=$(stat -c %a "$1" 2>/dev/null)
    if [ "$mode" == "$2" ]; then pass; else fail "$1 has mode ${mode:-?}, expected $2"; fi
}
check_log() { # check_log LOGFILE TEXT
    if grep -qF -- "$2" "$1"; then pass; else fail "log $(basename "$1") lacks: $2"; echo "--- $1"; cat "$1"; echo "---"; fi
}
check_status() { # check_status WHAT ACTUAL EXPECTED
    if [ "$2" == "$3" ]; then pass; else fail "$1 exited $2, expected $3"; fi
}
# The agent, with none of the variables it reads from the caller's environment.
agent() { env -u NXC_HOST -u NXC_DEPLOYMENT_FILE -u NXC_AGENT_ROOT "$agent_binary" "$@"; }
in_root() { local root=$1; shift; env -u NXC_HOST -u NXC_DEPLOYMENT_FILE NXC_AGENT_ROOT="$root" "$agent_binary" "$@"; }
# The agent as systemd runs it as a generator.
ln -s "$agent_binary" "$work/nxc-generator"
generator() { local root=$1; shift; env -u NXC_HOST -u NXC_DEPLOYMENT_FILE NXC_AGENT_ROOT="$root" "$work/nxc-generator" "$@"; }
masks() { # the units masked in DIR, one line, sorted
    (cd "$1" 2>/dev/null && for f in *; do [ "$(readlink "$f")" == /dev/null ] && echo "$f"; done) | sort | tr '\n' ' '
}

# A node's file system: composition.json and the interfaces the deployment names.
make_root() { # make_root DIR
    mkdir -p "$1/etc/nxc" "$1/sys/class/net/eth0" "$1/sys/class/net/ens4/device" "$1/sys/class/net/lo" "$1/proc/1"
    echo "52:54:00:77:00:01" > "$1/sys/class/net/eth0/address"
    echo "52:54:00:78:00:01" > "$1/sys/class/net/ens4/address"
    echo "00:00:00:00:00:00" > "$1/sys/class/net/lo/address"
    echo "0x9" > "$1/sys/class/net/lo/flags"
    cp "$work/composition.json" "$1/etc/nxc/composition.json"
    # The image's copy of the server role's files.
    mkdir -p "$1/usr/share/nxc/roles/server/var/www/html" "$1/usr/share/nxc/roles/server/etc/nginx"
    echo "hello from nxc" > "$1/usr/share/nxc/roles/server/var/www/html/index.html"
    chmod 640 "$1/usr/share/nxc/roles/server/var/www/html/index.html"
    echo "worker_processes 1;" > "$1/usr/share/nxc/roles/server/etc/nginx/nginx.conf"
}

cat > "$work/composition.json" <<'EOF'
{"version":1,"name":"webserver","future-key":{"x":1},
 "roles":{"server":{"services":["nginx","php8.2-fpm","chrony"],"packages":["nginx-light"],
                    "files":["/var/www/html/index.html","/etc/nginx/nginx.conf"]},
          "client":{"services":["iperf3","chrony.service"]},
          "nfs":{"services":["nfs-server","rpcbind.socket"]}}}
EOF

# The deployment document: the fixture the host's tests read too (Tests/fixtures/deployment.json,
# NXCDeployTests/DeploymentFixtureTests: the host writes exactly its keys), plus keys the agent
# does not know, on purpose (a newer nxc may add some).
fixture=$(cd "$(dirname "$0")/.." && pwd)/fixtures/deployment.json
python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
d["parameters"] = {"anything": [1, 2]}
json.dump(d, open(sys.argv[2], "w"), separators=(",", ":"))' "$fixture" "$work/deployment.json" \
    || { echo "cannot read $fixture" >&2; exit 2; }

expected_hosts='127.0.0.1 localhost
::1 localhost ip6-localhost ip6-loopback
10.77.0.2 client1
10.77.0.3 client2
10.77.0.4 nfs
10.77.0.1 server'

echo "== version"
check_content <(agent --version) "nxc-agent 0.1.0"

echo "== boot --host server --deployment FILE (NXC_AGENT_ROOT)"
r=$work/server; make_root "$r"
in_root "$r" boot --host server --deployment "$work/deployment.json" > "$work/server.log" 2>&1
check_status "boot server" $? 0
log=$work/server.log
check_content "$r/etc/hostname" "server"
check_content "$r/etc/hosts" "$expected_hosts"
check_mode "$r/root/.ssh" 700
check_mode "$r/root/.ssh/authorized_keys" 600
check_content "$r/root/.ssh/authorized_keys" "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyOne user@host
ssh-rsa AAAAB3FakeKeyTwo other@host"
check_content "$r/etc/nxc/role" "server"
check_content "$r/etc/nxc/hostname" "server"
check "deployment.json is the document as received" cmp -s "$r/etc/nxc/deployment.json" "$work/deployment.json"
check_content "$r/run/nxc/ready" "server"
check "no /run/nxc/failed after a clean boot" test ! -e "$r/run/nxc/failed"
check "no temporary files left" test -z "$(find "$r" -name '*.nxc-tmp.*')"
check_log "$log" "would set the hostname to server"
check_log "$log" "lo is up"
check_log "$log" "interface eth0 has MAC 52:54:00:77:00:01"
check_log "$log" "would run: ip link set dev eth0 up"
check_log "$log" "would run: ip address replace 10.77.0.1/24 dev eth0"
check_log "$log" "would run: ip link set dev ens4 up"
check_log "$log" "would run: ip address replace 10.0.2.15/24 dev ens4"
check_log "$log" "would run: ip route replace default via 10.0.2.2 dev ens4"
check_log "$log" "would run: ip route replace 10.99.0.0/16 via 10.0.2.3 dev ens4"
check_log "$log" "would run: ssh-keygen -q -t ed25519"
check_content "$r/var/www/html/index.html" "hello from nxc"
check_mode "$r/var/www/html/index.html" 640
check_content "$r/etc/nginx/nginx.conf" "worker_processes 1;"
check_log "$log" "role files: 2 of 2 in place, 2 changed"
# At boot the role's services wait for the agent (the generator orders them after it): the
# changed role files do not restart them, they are started once.
check_log "$log" "would ask: systemctl is-active --quiet nginx.service"
check_log "$log" "would run: systemctl start --no-block nginx.service"
check_log "$log" "would run: systemctl start --no-block php8.2-fpm.service"
check_log "$log" "would run: systemctl start --no-block chrony.service"
check "no restart of a service that was not running" sh -c "! grep -q 'systemctl restart' '$log'"
check "no client service started on the server" sh -c "! grep -q iperf3 '$log'"

echo "== role files changed under a running service (contextualised again): that one is restarted"
r2=$work/server-running; make_root "$r2"
NXC_AGENT_TEST_ACTIVE="nginx.service" in_root "$r2" boot --host server --deployment "$work/deployment.json" > "$work/running.log" 2>&1
check_status "boot with nginx running" $? 0
check_log "$work/running.log" "would run: systemctl restart --no-block nginx.service"
check_log "$work/running.log" "would run: systemctl start --no-block php8.2-fpm.service"

echo "== boot again: same result, host keys present, generator masks lifted by a reload"
mkdir -p "$r/etc/ssh" "$r/run/systemd/generator.early"
touch "$r/etc/ssh/ssh_host_ed25519_key"
ln -s /dev/null "$r/run/systemd/generator.early/nginx.service"
in_root "$r" boot --host server --deployment "$work/deployment.json" > "$work/again.log" 2>&1
check_status "second boot" $? 0
check_content "$r/etc/hosts" "$expected_hosts"
check_log "$work/again.log" "SSH host keys are present"
check_log "$work/again.log" "would run: systemctl daemon-reload"
check_log "$work/again.log" "role files: 2 of 2 in place, 0 changed"
check_log "$work/again.log" "would run: systemctl start --no-block nginx.service"
check "ssh-keygen not run when keys exist" sh -c "! grep -q ssh-keygen '$work/again.log'"

echo "== interface that never appears: goes on, reports, exits non-zero"
r=$work/client1; make_root "$r"
in_root "$r" boot --host client1 --deployment "$work/deployment.json" --link-timeout 1 > "$work/client1.log" 2>&1
check_status "boot client1 (missing interface)" $? 1
check_log "$work/client1.log" "no network interface with MAC 52:54:00:77:00:02 appeared within 1 s"
check_log "$work/client1.log" "would run: systemctl start --no-block iperf3.service"
check_content "$r/run/nxc/ready" "client1"
check_log "$r/run/nxc/failed" "52:54:00:77:00:02"
check_content "$r/etc/hostname" "client1"

echo "== node not in the deployment"
r=$work/nobody; make_root "$r"
in_root "$r" boot --host nobody --deployment "$work/deployment.json" > "$work/nobody.log" 2>&1
check_status "boot nobody" $? 1
check_log "$work/nobody.log" 'node "nobody" is not in the deployment'
check_log "$work/nobody.log" "client1, client2, nfs, server"
check "nothing written for an unknown node" test ! -e "$r/etc/hostname" -a ! -e "$r/run/nxc/ready"
check_log "$r/run/nxc/failed" 'node "nobody" is not in the deployment'

echo "== no node name at all"
in_root "$r" boot --deployment "$work/deployment.json" > "$work/noname.log" 2>&1
check_status "boot without a name" $? 1
check_log "$work/noname.log" "no node name"
echo "== no node name, nxc.await=ssh (a disk image before contextualisation): host keys, then wait"
r=$work/await; make_root "$r"
printf 'root=/dev/vda rw nxc.await=ssh\n' > "$r/proc/cmdline"
in_root "$r" boot > "$work/await.log" 2>&1
check_status "boot awaiting contextualisation" $? 0
check_log "$work/await.log" "would run: ssh-keygen -q -t ed25519"
check_content "$r/run/nxc/awaiting" "ssh"
check "not ready before contextualisation" test ! -e "$r/run/nxc/ready"
in_root "$r" boot --host server --deployment "$work/deployment.json" > "$work/await2.log" 2>&1
check_status "contextualised over SSH" $? 0
check_content "$r/etc/nxc/role" "server"
check_content "$r/run/nxc/ready" "server"
r=$work/nobody

echo "== kernel command line: nxc.host and nxc.deployment (base64 without padding)"
r=$work/cmdline; make_root "$r"
doc=$(base64 -w0 < "$work/deployment.json")
case "$doc" in *=) ;; *) fail "test document should need base64 padding; adjust it" ;; esac
printf 'BOOT_IMAGE=/vmlinuz console=ttyS0 "nxc.host=client2" nxc.deployment=%s quiet\n' "${doc%%=*}" > "$r/proc/cmdline"
check_content <(in_root "$r" whoami) "client2 client"
in_root "$r" boot --host server > "$work/cmdline.log" 2>&1
check_status "boot from the kernel command line" $? 0
check_log "$work/cmdline.log" "this is node client2 (from kernel command line (nxc.host)), role client"
check_log "$work/cmdline.log" "--host server is ignored"
check_log "$work/cmdline.log" "deployment from kernel command line (nxc.deployment)"
check_log "$work/cmdline.log" "no interfaces in the deployment"
check "cmdline deployment saved byte for byte" cmp -s "$r/etc/nxc/deployment.json" "$work/deployment.json"
check_content "$r/etc/hostname" "client2"
printf 'nxc.host=client2 nxc.deployment=%s\n' "$doc" > "$r/proc/cmdline"
check_content <(in_root "$r" whoami) "client2 client"
printf 'nxc.host=client2 nxc.deployment=not*base64\n' > "$r/proc/cmdline"
in_root "$r" whoami > "$work/b64.log" 2>&1
check_status "whoami with bad base64" $? 1
check_log "$work/b64.log" "is not valid base64"
# nxc.deployment_url comes before a deployment saved by an earlier boot, and whoami never fetches.
printf 'nxc.host=client2 nxc.deployment_url=http://10.0.2.2:8000/d.json\n' > "$r/proc/cmdline"
in_root "$r" whoami > "$work/url.log" 2>&1
check_status "whoami with deployment_url and only a deployment saved by an earlier boot" $? 1
check_log "$work/url.log" "nxc-agent boot fetches it, and has not in this boot"

echo "== nxc.deployment_url: nxc.if and nxc.route, then HTTP (python3 -m http.server on 127.0.0.1)"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for_port() { # wait_for_port PORT PID: up to 10 s
    local i
    for i in $(seq 100); do
        kill -0 "$2" 2> /dev/null || return 1
        (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null && return 0
        sleep 0.1
    done
    return 1
}
line_of() { grep -nF -- "$2" "$1" | head -1 | cut -d: -f1; }
check_before() { # check_before LOG FIRST SECOND: FIRST is logged before SECOND
    local a b
    a=$(line_of "$1" "$2"); b=$(line_of "$1" "$3")
    if [ -n "$a" ] && [ -n "$b" ] && [ "$a" -lt "$b" ]; then pass; else fail "log $(basename "$1"): \"$2\" (line ${a:-none}) not before \"$3\" (line ${b:-none})"; fi
}
if ! command -v python3 > /dev/null; then
    echo "SKIP: needs python3"
else
    srv=$work/srv; mkdir -p "$srv"
    cp "$work/deployment.json" "$srv/deployment.json"
    port=$(free_port)
    python3 -m http.server --bind 127.0.0.1 "$port" --directory "$srv" > "$work/http.log" 2>&1 &
    server_pids+=($!)
    check "http.server listens on 127.0.0.1:$port" wait_for_port "$port" "${server_pids[-1]}"
    url=http://127.0.0.1:$port/deployment.json

    r=$work/url; make_root "$r"
    printf 'BOOT_IMAGE=/vmlinuz nxc.host=server nxc.deployment_url=%s nxc.if=52:54:00:77:00:01,10.77.0.1/16 nxc.route=default,10.77.0.254 quiet\n' \
        "$url" > "$r/proc/cmdline"
    # The generator runs first, before any network: it masks every role's services.
    generator "$r" "$r/run/systemd/generator" "$r/run/systemd/generator.early" "$r/run/systemd/generator.late" 2> "$work/url-gen1.log"
    check_status "generator with only a URL" $? 0
    check_content <(masks "$r/run/systemd/generator.early") "chrony.service iperf3.service nfs-server.service nginx.service php8.2-fpm.service rpcbind.socket "
    check_log "$work/url-gen1.log" "the deployment is at $url (nxc.deployment_url)"
    check "the generator did not fetch" sh -c "! grep -q 'GET /' '$work/http.log'"
    in_root "$r" boot > "$work/url-boot.log" 2>&1
    check_status "boot from nxc.deployment_url" $? 0
    log=$work/url-boot.log
    check_content "$r/etc/hostname" "server"
    check_content "$r/etc/hosts" "$expected_hosts"
    check_content "$r/root/.ssh/authorized_keys" "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyOne user@host
ssh-rsa AAAAB3FakeKeyTwo other@host"
    check_content "$r/etc/nxc/role" "server"
    check "fetched deployment.json saved byte for byte" cmp -s "$r/etc/nxc/deployment.json" "$work/deployment.json"
    check "fetched deployment kept for this boot in /run/nxc" cmp -s "$r/run/nxc/deployment.json" "$work/deployment.json"
    check_content "$r/run/nxc/ready" "server"
    check "no /run/nxc/failed after a fetched boot" test ! -e "$r/run/nxc/failed"
    check_log "$log" "1 interface (nxc.if), 1 route (nxc.route)"
    check_before "$log" "would run: ip link set dev eth0 up" "fetching the deployment from $url"
    check_before "$log" "would run: ip address replace 10.77.0.1/16 dev eth0" "fetching the deployment from $url"
    check_before "$log" "would run: ip route replace default via 10.77.0.254" "fetching the deployment from $url"
    check_before "$log" "fetched the deployment from $url" "would run: ip address replace 10.77.0.1/24 dev eth0"
    check_log "$log" "deployment from $url (nxc.deployment_url)"
    check_log "$log" "would run: ip route replace default via 10.0.2.2 dev ens4"
    # The masks the generator set are lifted: boot reloads systemd, the generator runs again and reads /run/nxc.
    check_log "$log" "would run: systemctl daemon-reload"
    rm -rf "$r/run/systemd/generator.early"
    generator "$r" "$r/run/systemd/generator" "$r/run/systemd/generator.early" "$r/run/systemd/generator.late" 2> "$work/url-gen2.log"
    check_content <(masks "$r/run/systemd/generator.early") "iperf3.service nfs-server.service rpcbind.socket "
    check_log "$work/url-gen2.log" "role server: masked iperf3.service"
    check_content <(in_root "$r" whoami) "server server"
    check "the agent sent one GET" test "$(grep -c 'GET /deployment.json' "$work/http.log")" == 1

    echo "== pxe: nxc.if ADDRESS/NETMASK and nxc.route=default, with no gateway, as iPXE fills them in"
    r=$work/pxe; make_root "$r"
    printf 'nxc.host=server nxc.deployment_url=%s nxc.if=52:54:00:77:00:01,10.77.0.1/255.255.0.0 nxc.route=default,\n' "$url" > "$r/proc/cmdline"
    in_root "$r" boot > "$work/pxe-boot.log" 2>&1
    check_status "boot with a dotted netmask and no gateway" $? 0
    check_before "$work/pxe-boot.log" "would run: ip address replace 10.77.0.1/16 dev eth0" "fetching the deployment from $url"
    check_log "$work/pxe-boot.log" "nxc.route=default,: no gateway given; no route added"

    echo "== nxc.deployment_url quoted and by host name, nxc.if quoted, several addresses, a CIDR route"
    r=$work/url-quoted; make_root "$r"
    printf 'nxc.host=client2 nxc.deployment_url="http://localhost:%s/deployment.json" "nxc.if=52:54:00:78:00:01,10.0.2.15/24,fd00::15/64" nxc.route=10.99.0.0/16,10.0.2.3\n' \
        "$port" > "$r/proc/cmdline"
    in_root "$r" boot > "$work/url-quoted.log" 2>&1
    check_status "boot with a quoted URL" $? 0
    check "quoted: deployment.json saved" cmp -s "$r/etc/nxc/deployment.json" "$work/deployment.json"
    check_content "$r/etc/hostname" "client2"
    check_log "$work/url-quoted.log" "would run: ip address replace fd00::15/64 dev ens4"
    check_before "$work/url-quoted.log" "would run: ip route replace 10.99.0.0/16 via 10.0.2.3" "fetching the deployment"

    echo "== nxc.deployment inline wins over nxc.deployment_url"
    r=$work/url-inline; make_root "$r"
    printf 'nxc.host=server nxc.deployment=%s nxc.deployment_url=http://127.0.0.1:%s/other.json\n' "$doc" "$port" > "$r/proc/cmdline"
    in_root "$r" boot --fetch-timeout 1 > "$work/url-inline.log" 2>&1
    check_status "boot with both nxc.deployment and nxc.deployment_url" $? 0
    check_log "$work/url-inline.log" "deployment from kernel command line (nxc.deployment)"
    check_log "$work/url-inline.log" "nxc.deployment_url is ignored"
    check "inline: nothing fetched" sh -c "! grep -q 'other.json' '$work/http.log'"

    echo "== nxc.deployment_sha256: the fetched document is checked"
    sha=$(sha256sum < "$work/deployment.json" | cut -d' ' -f1)
    r=$work/url-sha; make_root "$r"
    printf 'nxc.host=server nxc.deployment_url=http://127.0.0.1:%s/deployment.json nxc.deployment_sha256=%s\n' "$port" "${sha^^}" > "$r/proc/cmdline"
    in_root "$r" boot --fetch-timeout 5 > "$work/url-sha.log" 2>&1
    check_status "boot with the document's SHA-256 (upper case)" $? 0
    check_log "$work/url-sha.log" "SHA-256 as nxc.deployment_sha256 says"
    check "sha: deployment.json saved" cmp -s "$r/etc/nxc/deployment.json" "$work/deployment.json"
    # Another document at the URL (a forged or stale answer): refused, nothing configured.
    sed 's/10.77.0.1/10.66.6.6/g' "$work/deployment.json" > "$srv/forged.json"
    r=$work/url-forged; make_root "$r"
    printf 'nxc.host=server nxc.deployment_url=http://127.0.0.1:%s/forged.json nxc.deployment_sha256=%s\n' "$port" "$sha" > "$r/proc/cmdline"
    in_root "$r" boot --fetch-timeout 4 > "$work/url-forged.log" 2>&1
    check_status "boot with a document whose SHA-256 differs" $? 1
    check_log "$r/run/nxc/failed" "not $sha (nxc.deployment_sha256): refused"
    check "forged: nothing configured" test ! -e "$r/etc/hostname" -a ! -e "$r/etc/nxc/deployment.json" -a ! -e "$r/run/nxc/ready"
    check "forged: the fetch was retried" test "$(grep -c 'GET /forged.json' "$work/http.log")" -ge 2
    # Without the parameter (kexec.sh run by hand): fetched, with a warning.
    r=$work/url-nosha; make_root "$r"
    printf 'nxc.host=server nxc.deployment_url=http://127.0.0.1:%s/deployment.json\n' "$port" > "$r/proc/cmdline"
    in_root "$r" boot --fetch-timeout 5 > "$work/url-nosha.log" 2>&1
    check_status "boot without nxc.deployment_sha256" $? 0
    check_log "$work/url-nosha.log" "no nxc.deployment_sha256 on the kernel command line"

    echo "== a 404 is an error naming the status"
    r=$work/url-404; make_root "$r"
    printf 'nxc.host=server nxc.deployment_url=http://127.0.0.1:%s/missing.json\n' "$port" > "$r/proc/cmdline"
    in_root "$r" boot --fetch-timeout 1 > "$work/url-404.log" 2>&1
    check_status "boot with a URL that is not found" $? 1
    check_log "$r/run/nxc/failed" "answered HTTP status 404"
    check_log "$work/url-404.log" "could not fetch the deployment from http://127.0.0.1:$port/missing.json within 1 s"
    check "404: reason logged once as a warning" test "$(grep -c 'cannot fetch the deployment yet' "$work/url-404.log")" == 1
    check "404: no ready file, nothing configured" test ! -e "$r/run/nxc/ready" -a ! -e "$r/etc/hostname"

    echo "== the server is down: fails within --fetch-timeout, /run/nxc/failed says why"
    r=$work/url-down; make_root "$r"
    down=$(free_port)
    printf 'nxc.host=server nxc.deployment_url=http://127.0.0.1:%s/deployment.json nxc.if=52:54:00:99:99:99,10.9.0.1/24\n' "$down" > "$r/proc/cmdline"
    started=$SECONDS
    in_root "$r" boot --fetch-timeout 2 --link-timeout 0 > "$work/url-down.log" 2>&1
    check_status "boot with the server down" $? 1
    elapsed=$((SECONDS - started))
    check "server down: gave up after about 2 s (took $elapsed s)" test "$elapsed" -ge 1 -a "$elapsed" -le 6
    check_log "$work/url-down.log" "connect to 127.0.0.1:$down: Connection refused"
    check_log "$r/run/nxc/failed" "within 2 s"
    check_log "$r/run/nxc/failed" "Connection refused"
    check_log "$r/run/nxc/failed" "network (nxc.if): no network interface with MAC 52:54:00:99:99:99"
    check "server down: no ready file" test ! -e "$r/run/nxc/ready"

    echo "== Content-Length: a short body is an error, a connection kept open ends at Content-Length"
    cat > "$work/raw-server.py" <<'PYEOF'
import socket, sys
body = open(sys.argv[2], "rb").read()
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen(8)
kept = []
while True:
    connection, _ = server.accept()
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = connection.recv(4096)
        if not chunk:
            break
        request += chunk
    path = request.split(b" ")[1] if request.count(b" ") >= 2 else b"/"
    if path == b"/short":
        connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % (len(body) + 100) + body)
        connection.close()
    elif path == b"/chunked":
        connection.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        connection.close()
    else:  # /kept-open: the whole body, then the connection stays open
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
        kept.append(connection)
PYEOF
    raw=$(free_port)
    python3 "$work/raw-server.py" "$raw" "$work/deployment.json" > "$work/raw.log" 2>&1 &
    server_pids+=($!)
    check "raw server listens on 127.0.0.1:$raw" wait_for_port "$raw" "${server_pids[-1]}"
    r=$work/url-kept; make_root "$r"
    printf 'nxc.host=server nxc.deployment_url=http://127.0.0.1:%s/kept-open\n' "$raw" > "$r/proc/cmdline"
    started=$SECONDS
    in_root "$r" boot --fetch-timeout 5 > "$work/url-kept.log" 2>&1
    check_status "boot with a connection kept open after Content-Length" $? 0
    check "kept open: did not wait for the end of the connection" test $((SECONDS - started)) -le 3
    check "kept open: body cut at Content-Length" cmp -s "$r/etc/nxc/deployment.json" "$work/deployment.json"
    r=$work/url-short; make_root "$r"
    printf 'nxc.host=server nxc.deployment_url=http://127.0.0.1:%s/short\n' "$raw" > "$r/proc/cmdline"
    in_root "$r" boot --fetch-timeout 1 > "$work/url-short.log" 2>&1
    check_status "boot with a body shorter than Content-Length" $? 1
    check_log "$r/run/nxc/failed" "closed the connection after $(stat -c %s "$work/deployment.json") of $(( $(stat -c %s "$work/deployment.json") + 100 )) body bytes"
    printf 'nxc.host=server nxc.deployment_url=http://127.0.0.1:%s/chunked\n' "$raw" > "$r/proc/cmdline"
    in_root "$r" boot --fetch-timeout 0 > "$work/url-chunked.log" 2>&1
    check_status "boot with a chunked answer" $? 1
    check_log "$r/run/nxc/failed" 'Transfer-Encoding "chunked"'
    check_log "$r/run/nxc/failed" "(1 attempt)"
    stop_servers
fi

echo "== nxc.deployment_url and nxc.if/nxc.route errors (nothing fetched)"
r=$work/url-bad; make_root "$r"
url_error() { # url_error DESCRIPTION CMDLINE EXPECTED
    printf 'nxc.host=server %s\n' "$2" > "$r/proc/cmdline"
    in_root "$r" boot --fetch-timeout 0 > "$work/url-bad.log" 2>&1
    check_status "$1" $? 1
    check_log "$work/url-bad.log" "$3"
    check_log "$r/run/nxc/failed" "$3"
    check "$1: nothing fetched" sh -c "! grep -q 'fetching the deployment' '$work/url-bad.log'"
}
url_error "https URL" "nxc.deployment_url=https://127.0.0.1/d.json" "uses TLS, which the agent does not speak"
url_error "ftp URL" "nxc.deployment_url=ftp://127.0.0.1/d.json" "is not an http:// URL"
url_error "bad port" "nxc.deployment_url=http://127.0.0.1:99999/d.json" 'port "99999" is not a number between 1 and 65535'
url_error "bad host" "nxc.deployment_url=http://bad!host/d.json" 'host "bad!host" is neither'
url_error "bad nxc.if MAC" "nxc.deployment_url=http://127.0.0.1:1/d nxc.if=52:54:00:77:00,10.0.0.1/24" \
    'kernel command line: nxc.if=52:54:00:77:00,10.0.0.1/24: "52:54:00:77:00" is not a MAC address'
url_error "bad nxc.if address" "nxc.deployment_url=http://127.0.0.1:1/d nxc.if=52:54:00:77:00:01,10.0.0.1/40" \
    '"10.0.0.1/40" is not ADDRESS/PREFIX'
url_error "nxc.if netmask with a hole" "nxc.deployment_url=http://127.0.0.1:1/d nxc.if=52:54:00:77:00:01,10.0.0.1/255.0.255.0" \
    '"10.0.0.1/255.0.255.0" is not ADDRESS/PREFIX'
url_error "bad nxc.route" "nxc.deployment_url=http://127.0.0.1:1/d nxc.route=default" "expected nxc.route=TO,VIA"
url_error "bad nxc.route gateway" "nxc.deployment_url=http://127.0.0.1:1/d nxc.route=default,gateway" \
    '"gateway" is not an IP address'
url_error "bad nxc.deployment_sha256" "nxc.deployment_url=http://127.0.0.1:1/d nxc.deployment_sha256=abc" \
    "nxc.deployment_sha256=abc: is not 64 hex digits"
in_root "$r" boot --fetch-timeout 9999 > "$work/url-usage.log" 2>&1
check_status "boot --fetch-timeout 9999" $? 64
check_log "$work/url-usage.log" "--fetch-timeout takes seconds between 0 and 3600"

echo "== sha256: FIPS 180-4 / NIST vectors"
check_content <(printf '' | agent sha256) "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
check_content <(printf 'abc' | agent sha256) "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
check_content <(printf 'abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq' | agent sha256) \
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
check_content <(printf 'abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu' | agent sha256) \
    "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"
check_content <(head -c 1000000 /dev/zero | tr '\0' a | agent sha256) "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
# Every length around the 55/56/64-byte padding edges, against sha256sum.
for n in 0 1 54 55 56 57 63 64 65 119 120 127 128 129 1000; do
    head -c "$n" /dev/urandom > "$work/len.bin"
    check_content <(agent sha256 < "$work/len.bin") "$(sha256sum < "$work/len.bin" | cut -d' ' -f1)"
done

echo "== update (a spare took another node's place)"
r=$work/update; make_root "$r"
in_root "$r" boot --host server --deployment "$work/deployment.json" > "$work/update-boot.log" 2>&1
check_status "boot before update" $? 0
# client2 moved to another host: a new address, the rest as it was.
python3 -c 'import json, sys
d = json.load(open(sys.argv[1])); d["nodes"]["client2"]["address"] = "10.77.0.9"
json.dump(d, open(sys.argv[2], "w"))' "$work/deployment.json" "$work/moved.json"
in_root "$r" update < "$work/moved.json" > "$work/update.log" 2>&1
check_status "update" $? 0
check_content "$r/etc/hosts" "${expected_hosts/10.77.0.3 client2/10.77.0.9 client2}"
check "update keeps the new document" cmp -s "$r/etc/nxc/deployment.json" "$work/moved.json"
check_log "$work/update.log" "updated: node server (role server) now has the deployment's 4 nodes"
# A document that changes this node's role, or leaves it out, is refused; nothing is written.
python3 -c 'import json, sys
d = json.load(open(sys.argv[1])); d["nodes"]["server"]["role"] = "client"; d["nodes"]["client2"]["address"] = "10.77.0.10"
json.dump(d, open(sys.argv[2], "w"))' "$work/deployment.json" "$work/role.json"
in_root "$r" update < "$work/role.json" > "$work/update-role.log" 2>&1
check_status "update that changes the role" $? 1
check_log "$work/update-role.log" "the document makes server a node of role client, not server: it must boot again"
python3 -c 'import json, sys
d = json.load(open(sys.argv[1])); del d["nodes"]["server"]; d["order"] = [n for n in d.get("order", []) if n != "server"]
json.dump(d, open(sys.argv[2], "w"))' "$work/deployment.json" "$work/gone.json"
in_root "$r" update < "$work/gone.json" > "$work/update-gone.log" 2>&1
check_status "update without this node" $? 1
check "refused updates change nothing" cmp -s "$r/etc/nxc/deployment.json" "$work/moved.json"
check "refused updates leave /etc/hosts" grep -q "10.77.0.9 client2" "$r/etc/hosts"
printf 'not json' | in_root "$r" update > "$work/update-bad.log" 2>&1
check_status "update with a bad document" $? 1
in_root "$r" update extra < /dev/null > /dev/null 2>&1
check_status "update with an argument" $? 64

echo "== secret install and derive"
r=$work/secret; make_root "$r"
head -c 32 /dev/urandom > "$work/secret.bin"
hmac() { python3 -c 'import hmac, hashlib, sys; print(hmac.new(open(sys.argv[1], "rb").read(), sys.argv[2].encode(), hashlib.sha256).hexdigest())' "$@"; }
in_root "$r" secret derive munge > "$work/secret-early.out" 2> "$work/secret-early.log"
check_status "derive before the secret is there" $? 1
check_log "$work/secret-early.log" "/run/nxc/secret: is not there: nxc start sends it once the node answers"
check "derive before: nothing on standard output" test ! -s "$work/secret-early.out"
head -c 31 /dev/urandom | in_root "$r" secret install > "$work/secret-short.log" 2>&1
check_status "install of 31 bytes" $? 1
check_log "$work/secret-short.log" "the secret must be 32 bytes, not 31"
head -c 33 /dev/urandom | in_root "$r" secret install > "$work/secret-long.log" 2>&1
check_status "install of 33 bytes" $? 1
check "a refused secret leaves no file" test ! -e "$r/run/nxc/secret"
# A unit waiting for the secret (--wait) gets it when it arrives.
in_root "$r" secret derive munge --wait 10 > "$work/secret-waited.out" 2> "$work/secret-waited.log" &
waiter=$!
sleep 1
in_root "$r" secret install < "$work/secret.bin" > "$work/secret-install.log" 2>&1
check_status "install of 32 bytes" $? 0
wait "$waiter"
check_status "derive --wait, secret installed meanwhile" $? 0
check_mode "$r/run/nxc/secret" 600
check "the secret is kept byte for byte" cmp -s "$r/run/nxc/secret" "$work/secret.bin"
check "no temporary file left" test -z "$(find "$r/run/nxc" -name '*.nxc-tmp.*')"
if command -v python3 > /dev/null; then
    check_content "$work/secret-waited.out" "$(hmac "$work/secret.bin" munge)"
    check_content <(in_root "$r" secret derive slurm.jwt) "$(hmac "$work/secret.bin" slurm.jwt)"
fi
check "different purposes, different keys" test "$(in_root "$r" secret derive munge)" != "$(in_root "$r" secret derive other)"
check_log "$work/secret-install.log" "the deployment's secret (32 bytes, root only)"
check "the first secret restarts nothing" sh -c "! grep -q try-restart '$work/secret-install.log'"
# A new secret (nxc start again on running nodes) restarts the role's services, which derived from the old one.
echo server > "$r/etc/nxc/role"
head -c 32 /dev/urandom | in_root "$r" secret install > "$work/secret-again.log" 2>&1
check_status "install of a new secret" $? 0
check_log "$work/secret-again.log" "would run: systemctl try-restart --no-block nginx.service php8.2-fpm.service chrony.service"
check "the new secret replaced the old" sh -c "! cmp -s '$r/run/nxc/secret' '$work/secret.bin'"
in_root "$r" secret derive 'Bad/Purpose' > /dev/null 2> "$work/secret-bad.log"
check_status "derive with a bad purpose" $? 64
check_log "$work/secret-bad.log" "must be 1 to 64 of a-z"
in_root "$r" secret derive > /dev/null 2>&1
check_status "derive without a purpose" $? 64
in_root "$r" secret > /dev/null 2>&1
check_status "secret without a command" $? 64
chmod 644 "$r/run/nxc/secret"
in_root "$r" secret derive munge > /dev/null 2> "$work/secret-mode.log"
check_status "derive from a secret others can read" $? 1
check_log "$work/secret-mode.log" "must be a regular file of this user with mode 0600"

echo "== environment of PID 1 (containers): NXC_HOST and NXC_DEPLOYMENT_FILE"
r=$work/container; make_root "$r"
mkdir -p "$r/nxc"; cp "$work/deployment.json" "$r/nxc/deployment.json"
printf 'PATH=/usr/bin\0NXC_HOST=nfs\0NXC_DEPLOYMENT_FILE=/nxc/deployment.json\0container=docker\0' > "$r/proc/1/environ"
check_content <(in_root "$r" whoami) "nfs nfs"
in_root "$r" boot > "$work/container.log" 2>&1
check_status "boot from PID 1's environment" $? 0
check_log "$work/container.log" "environment of PID 1 (NXC_HOST)"
check_log "$work/container.log" "would run: systemctl start --no-block rpcbind.socket"
echo "== a deployment without addresses (the engine resolves names): /etc/hosts left to the engine"
r=$work/engine-dns; make_root "$r"
mkdir -p "$r/nxc"
printf '{"version":1,"composition":"c","authorized_keys":[],"nodes":{"server":{"role":"server"},"client1":{"role":"client"}}}' > "$r/nxc/deployment.json"
printf 'PATH=/usr/bin\0NXC_HOST=client1\0NXC_DEPLOYMENT_FILE=/nxc/deployment.json\0' > "$r/proc/1/environ"
printf '127.0.0.1 localhost\n172.18.0.3 client1\n' > "$r/etc/hosts"
in_root "$r" boot > "$work/engine-dns.log" 2>&1
check_status "boot without addresses" $? 0
check_log "$work/engine-dns.log" "/etc/hosts: left as it is"
check_content "$r/etc/hosts" "$(printf '127.0.0.1 localhost\n172.18.0.3 client1')"
check_content "$r/etc/nxc/role" "client"
r=$work/container
echo "== own environment wins over PID 1's"
check_content <(env NXC_HOST=client1 NXC_AGENT_ROOT="$r" "$agent_binary" whoami) "client1 client"
echo "== saved /etc/nxc/hostname and deployment.json (a disk image rebooted)"
rm "$r/proc/1/environ"
check_content <(in_root "$r" whoami) "nfs nfs"

echo "== a role file missing from the image"
r=$work/nofile; make_root "$r"
rm "$r/usr/share/nxc/roles/server/etc/nginx/nginx.conf"
in_root "$r" boot --host server --deployment "$work/deployment.json" > "$work/nofile.log" 2>&1
check_status "boot with a missing role file" $? 1
check_log "$r/run/nxc/failed" "role file /etc/nginx/nginx.conf"
check_content "$r/var/www/html/index.html" "hello from nxc"
check_log "$work/nofile.log" "would run: systemctl start --no-block nginx.service"

echo "== composition.json with a role file outside the root"
r=$work/esc-root; make_root "$r"
printf '{"roles":{"server":{"services":[],"files":["/etc/../../escape"]}}}' > "$r/etc/nxc/composition.json"
in_root "$r" boot --host server --deployment "$work/deployment.json" > "$work/escape.log" 2>&1
check_status "boot with a file path containing .." $? 1
check_log "$work/escape.log" 'key "roles.server.files[0]"'
check "nothing written outside the root" test ! -e "$work/escape"

echo "== invalid deployments"
r=$work/invalid; make_root "$r"
printf '{"version":1,"nodes":{"server":{"role":"server",}}}' > "$work/bad.json"
in_root "$r" boot --host server --deployment "$work/bad.json" > "$work/bad.log" 2>&1
check_status "boot with bad JSON" $? 1
check_log "$work/bad.log" "bad.json (--deployment): line 1, column"
printf '{"version":2,"nodes":{}}' > "$work/v2.json"
in_root "$r" whoami --host server --deployment "$work/v2.json" > "$work/v2.log" 2>&1
check_status "whoami with version 2" $? 1
check_log "$work/v2.log" 'key "version": this agent reads version 1 only'
printf '{"nodes":{"server":{"role":"server","address":"10.0.0.300"}}}' > "$work/addr.json"
in_root "$r" whoami --host server --deployment "$work/addr.json" > "$work/addr.log" 2>&1
check_status "whoami with a bad address" $? 1
check_log "$work/addr.log" 'key "nodes.server": address "10.0.0.300" is not an IPv4 or IPv6 address'
printf '{"nodes":{"server":{"role":"server","interfaces":[{"mac":"52:54:00:77:00:01","addresses":["10.0.0.1/33"]}]}}}' > "$work/cidr.json"
in_root "$r" whoami --host server --deployment "$work/cidr.json" > "$work/cidr.log" 2>&1
check_status "whoami with a bad prefix" $? 1
check_log "$work/cidr.log" 'nodes.server.interfaces[0]": address "10.0.0.1/33" is not ADDRESS/PREFIX'
printf '{"nodes":{"bad_name":{"role":"server"}}}' > "$work/name.json"
in_root "$r" whoami --host bad_name --deployment "$work/name.json" > "$work/name.log" 2>&1
check_status "whoami with a bad node name" $? 1
check_log "$work/name.log" "not a valid host name"
in_root "$r" whoami --host server --deployment "$work/missing.json" > "$work/missing.log" 2>&1
check_status "whoami with a missing file" $? 1
check_log "$work/missing.log" "missing.json: No such file or directory"
agent boot --bogus > "$work/usage.log" 2>&1
check_status "boot --bogus" $? 64
check_log "$work/usage.log" 'unknown argument "--bogus"'

echo "== generator"
r=$work/gen-server; make_root "$r"
printf 'nxc.host=server nxc.deployment=%s\n' "$doc" > "$r/proc/cmdline"
generator "$r" "$work/gs/normal" "$work/gs/early" "$work/gs/late" 2> "$work/gen.log"
check_status "generator for server" $? 0
check_content <(masks "$work/gs/early") "iperf3.service nfs-server.service rpcbind.socket "
check "generator writes nothing into LATE_DIR" test ! -e "$work/gs/late"
check_log "$work/gen.log" "nxc-generator: role server: masked iperf3.service nfs-server.service rpcbind.socket"
# The role's own services are ordered after the agent (a drop-in in NORMAL_DIR), so they read its files at their first start.
check_content <(cd "$work/gs/normal" && ls -d *.service.d | tr '\n' ' ') "chrony.service.d nginx.service.d php8.2-fpm.service.d "
check_content "$work/gs/normal/nginx.service.d/50-nxc-after-agent.conf" "# nxc-generator: the role's files are in place before this starts.
[Unit]
After=nxc-agent.service"
check_log "$work/gen.log" "role server: nginx.service php8.2-fpm.service chrony.service start after nxc-agent"

r=$work/gen-client; make_root "$r"
printf 'PATH=/bin\0NXC_HOST=client1\0NXC_DEPLOYMENT_FILE=/d.json\0' > "$r/proc/1/environ"
cp "$work/deployment.json" "$r/d.json"
generator "$r" "$work/gc/normal" "$work/gc/early" "$work/gc/late" 2> /dev/null
check_status "generator for client1" $? 0
check_content <(masks "$work/gc/early") "nfs-server.service nginx.service php8.2-fpm.service rpcbind.socket "

r=$work/gen-unknown; make_root "$r"
generator "$r" "$work/gu/normal" "$work/gu/early" "$work/gu/late" 2> "$work/genu.log"
check_status "generator without a deployment" $? 0
check_content <(masks "$work/gu/early") "chrony.service iperf3.service nfs-server.service nginx.service php8.2-fpm.service rpcbind.socket "
check_log "$work/genu.log" "no node name"

r=$work/gen-stranger; make_root "$r"
printf 'nxc.host=stranger nxc.deployment=%s\n' "$doc" > "$r/proc/cmdline"
generator "$r" "$work/gx/normal" "$work/gx/early" "$work/gx/late" 2> "$work/genx.log"
check_status "generator for a node not in the deployment" $? 0
check_content <(masks "$work/gx/early") "chrony.service iperf3.service nfs-server.service nginx.service php8.2-fpm.service rpcbind.socket "
check_log "$work/genx.log" 'node "stranger" is not in the deployment'

echo "== bundle: the running kernel and the initrd kept in memory (retain_initrd), for kexec --reuse"
r=$work/bundle; mkdir -p "$r/proc" "$r/sys/kernel/boot_params" "$r/boot"
printf 'kernel image' > "$r/boot/vmlinuz-$(uname -r)"
# A fake /proc/kcore: an ELF64 core whose second PT_LOAD maps physical 0x100000-0x500000 at file
# offset 0x2000; the "initrd" is 3000 bytes at physical 0x101234, and boot_params say so.
python3 - "$r" <<'PY'
import struct, sys, os, random
r = sys.argv[1]
random.seed(7)
initrd = bytes(random.getrandbits(8) for _ in range(3000))
open(r + "/initrd.expected", "wb").write(initrd)
eh = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9) + struct.pack("<HHIQQQIHHHHHH", 4, 62, 1, 0, 64, 0, 0, 64, 56, 2, 0, 0, 0)
ph1 = struct.pack("<IIQQQQQQ", 1, 7, 0x1000, 0xffffffffff600000, 0xffffffffffffffff, 0x100, 0x100, 0x1000)  # vmalloc: no paddr
ph2 = struct.pack("<IIQQQQQQ", 1, 7, 0x2000, 0xffff888000100000, 0x100000, 0x400000, 0x400000, 0x1000)
core = bytearray(eh + ph1 + ph2)
core += bytes(0x2000 - len(core))
ram = bytearray(0x400000)
ram[0x1234:0x1234 + len(initrd)] = initrd
core += ram
open(r + "/proc/kcore", "wb").write(core)
bp = bytearray(4096)
struct.pack_into("<I", bp, 0x218, 0x101234)
struct.pack_into("<I", bp, 0x21c, len(initrd))
open(r + "/sys/kernel/boot_params/data", "wb").write(bp)
PY
printf 'console=ttyS0 nxc.host=server retain_initrd\n' > "$r/proc/cmdline"
in_root "$r" bundle "$r/tmp/nxc-bundle" > "$work/bundle.log" 2>&1
check_status "bundle" $? 0
check "initrd copied out of memory" cmp -s "$r/tmp/nxc-bundle/initrd" "$r/initrd.expected"
check_content "$r/tmp/nxc-bundle/kernel" "kernel image"
check_log "$work/bundle.log" "initrd: 3000 bytes copied from memory (retain_initrd)"
echo "== bundle: files already there are kept; no retain_initrd: no initrd"
printf 'pushed' > "$r/tmp/nxc-bundle/initrd"
in_root "$r" bundle "$r/tmp/nxc-bundle" > "$work/bundle2.log" 2>&1
check_status "bundle again" $? 0
check_content "$r/tmp/nxc-bundle/initrd" "pushed"
printf 'console=ttyS0\n' > "$r/proc/cmdline"
in_root "$r" bundle "$r/tmp/other" > "$work/bundle3.log" 2>&1
check_status "bundle without retain_initrd" $? 0
check "no initrd without retain_initrd" test ! -e "$r/tmp/other/initrd"
check_log "$work/bundle3.log" "not kept in memory (no retain_initrd"
echo "== bundle: a range the core does not map is said, not invented"
printf 'console=ttyS0 retain_initrd\n' > "$r/proc/cmdline"
python3 -c 'import struct,sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); struct.pack_into("<I", b, 0x218, 0x9000000); open(p,"wb").write(b)' "$r/sys/kernel/boot_params/data"
in_root "$r" bundle "$r/tmp/third" > "$work/bundle4.log" 2>&1
check_status "bundle, range not mapped" $? 0
check "no initrd from an unmapped range" test ! -e "$r/tmp/third/initrd"
check_log "$work/bundle4.log" "is not in"
in_root "$r" bundle relative/dir > "$work/bundle5.log" 2>&1
check_status "bundle with a relative folder" $? 64

echo "== generator never fails"
r=$work/gen-broken; make_root "$r"
echo '{"roles": [' > "$r/etc/nxc/composition.json"
generator "$r" "$work/gb/n" "$work/gb/e" "$work/gb/l" 2> "$work/genb.log"
check_status "generator with broken composition.json" $? 0
check_log "$work/genb.log" "nothing masked"
rm "$r/etc/nxc/composition.json"
generator "$r" "$work/gb/n" "$work/gb/e" "$work/gb/l" 2> /dev/null
check_status "generator without composition.json" $? 0
generator "$r" 2> /dev/null
check_status "generator without arguments" $? 0
make_root "$r"; printf 'nxc.host=server nxc.deployment=%s\n' "$doc" > "$r/proc/cmdline"
touch "$work/not-a-dir"
generator "$r" "$work/gb/n" "$work/not-a-dir/early" "$work/gb/l" 2> /dev/null
check_status "generator with an unusable EARLY_DIR" $? 0
"$agent_binary" generator "$work/one" > /dev/null 2>&1
check_status "nxc-agent generator DIR" $? 0

# ---------------------------------------------------------------------------
echo "== real run in private namespaces"
if [ "$(id -u)" != 0 ] || ! unshare --mount --uts --net --pid --fork --propagation private true 2> /dev/null; then
    echo "SKIP: needs root and unshare(1) with mount, UTS, network and PID namespaces"
else
    ns=$work/ns; mkdir -p "$ns/etc/ssh" "$ns/etc/nxc" "$ns/bin"
    cp /etc/passwd /etc/group "$ns/etc/"
    [ -e /etc/nsswitch.conf ] && cp /etc/nsswitch.conf "$ns/etc/"
    echo '{"version":1,"roles":{"server":{"services":["nginx","chrony"]},"client":{"services":["iperf3"]}}}' \
        > "$ns/etc/nxc/composition.json"
    touch "$ns/etc/nxc-test-marker"
    cp "$agent_binary" "$ns/bin/nxc-agent"
    # A stand-in systemctl records its arguments (there is no systemd in here).
    printf '#!/bin/sh\necho "$*" >> /run/systemctl.log\n' > "$ns/bin/systemctl"; chmod +x "$ns/bin/systemctl"
    cat > "$ns/deployment.json" <<'EOF'
{"version":1,"authorized_keys":["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyOne user@host"],
 "nodes":{"server":{"role":"server","address":"10.77.0.1",
   "interfaces":[{"mac":"52:54:00:77:00:01","addresses":["10.77.0.1/24","fd77::1/64"],
                  "routes":[{"to":"10.88.0.0/16","via":"10.77.0.254"},{"to":"default","via":"10.77.0.254"}]},
                 {"mac":"52:54:00:99:99:99","addresses":["10.99.0.1/24"]}]},
  "client1":{"role":"client","address":"10.77.0.2"}}}
EOF
    cat > "$ns/inside.sh" <<'EOF'
set -eu
ns=$1
# Everything the agent writes lands on tmpfs mounts private to this namespace.
mount -t tmpfs tmpfs /etc && cp -a "$ns/etc/." /etc/
test -f /etc/nxc-test-marker
mount -t tmpfs tmpfs /root
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /usr/local && mkdir -p /usr/local/sbin && cp "$ns/bin/systemctl" /usr/local/sbin/
mount -t sysfs sysfs /sys
ip link add v0 address 52:54:00:77:00:01 type veth peer name v1
ip link set dev v1 up
set +e
"$ns/bin/nxc-agent" boot --host server --deployment "$ns/deployment.json" --link-timeout 1 > "$ns/boot.log" 2>&1
echo $? > "$ns/status"
set -e
{
    echo "hostname=$(hostname)"
    ip -o addr show dev v0
    ip route show
    ip -6 addr show dev v0 | grep -o 'fd77::1/64' || true
    ip -o link show lo | grep -o 'LOOPBACK,UP' || true
    ls /etc/ssh
    cat /etc/hosts
    stat -c '%a %n' /root/.ssh /root/.ssh/authorized_keys
    cat /run/nxc/ready /run/nxc/failed /run/systemctl.log
} > "$ns/state" 2>&1
EOF
    unshare --mount --uts --net --pid --fork --propagation private bash "$ns/inside.sh" "$ns"
    check_status "namespace setup" $? 0
    check_content "$ns/status" "1"
    state=$ns/state
    check_log "$state" "hostname=server"
    check_log "$state" "inet 10.77.0.1/24"
    check_log "$state" "fd77::1/64"
    check_log "$state" "10.88.0.0/16 via 10.77.0.254 dev v0"
    check_log "$state" "default via 10.77.0.254 dev v0"
    check_log "$state" "LOOPBACK,UP"
    check_log "$state" "ssh_host_ed25519_key.pub"
    check_log "$state" "10.77.0.2 client1"
    check_log "$state" "700 /root/.ssh"
    check_log "$state" "600 /root/.ssh/authorized_keys"
    check_log "$state" "no network interface with MAC 52:54:00:99:99:99"
    check_log "$state" "start --no-block nginx.service"
    check "client services not started on the server" sh -c "! grep -q iperf3 '$state'"
    check_log "$state" "start --no-block chrony.service"
    check_log "$ns/boot.log" "running: ssh-keygen -q -t ed25519"
    check_log "$ns/boot.log" "hostname set to server"
    check "host's hostname untouched" test "$(hostname)" != server

    echo "== real run: nxc.deployment_url over the network that nxc.if and nxc.route set up"
    if [ ! -x /usr/bin/python3 ]; then
        echo "SKIP: needs /usr/bin/python3 (the namespace hides /root)"
    else
        # The deployer is in a network namespace of its own behind the veth peer, at an address
        # (10.66.0.1) the node reaches only through the nxc.route gateway.
        mkdir -p "$ns/srv"
        cat > "$ns/srv/deployment.json" <<'EOF'
{"version":1,"authorized_keys":[],
 "nodes":{"server":{"role":"server","address":"10.77.0.1",
   "interfaces":[{"mac":"52:54:00:77:00:01","addresses":["10.77.0.1/24"],
                  "routes":[{"to":"10.88.0.0/16","via":"10.77.0.254"}]}]}}}
EOF
        printf '%s\n' 'console=ttyS0 nxc.host=server nxc.deployment_url="http://10.66.0.1:8080/deployment.json" nxc.if=52:54:00:77:00:01,10.77.0.1/24 nxc.route=default,10.77.0.254' \
            > "$ns/cmdline"
        cat > "$ns/inside-url.sh" <<'EOF'
set -eu
ns=$1
test -n "$ns" -a -d "$ns/srv"
mount -t tmpfs tmpfs /etc && cp -a "$ns/etc/." /etc/
test -f /etc/nxc-test-marker
mount -t tmpfs tmpfs /root
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /usr/local && mkdir -p /usr/local/sbin && cp "$ns/bin/systemctl" /usr/local/sbin/
mount -t sysfs sysfs /sys
mount -t proc proc /proc
mount --bind "$ns/cmdline" /proc/cmdline
unshare --net bash -c '
    for i in $(seq 100); do ip link show v1 > /dev/null 2>&1 && break; sleep 0.05; done
    ip link set lo up && ip link set v1 up
    ip address add 10.77.0.254/24 dev v1 && ip address add 10.66.0.1/32 dev lo
    exec /usr/bin/python3 -m http.server --bind 10.66.0.1 8080 --directory "$0"' "$ns/srv" > "$ns/http.log" 2>&1 &
http=$!
for i in $(seq 100); do
    [ "$(readlink /proc/$http/ns/net)" != "$(readlink /proc/self/ns/net)" ] && break
    sleep 0.05
done
ip link add v0 address 52:54:00:77:00:01 type veth peer name v1
ip link set v1 netns "$http"
set +e
"$ns/bin/nxc-agent" boot --fetch-timeout 20 --link-timeout 5 > "$ns/url-boot.log" 2>&1
echo $? > "$ns/url-status"
kill "$http"; wait "$http"
set -e
{
    ip -o addr show dev v0
    ip route show
    cat /run/nxc/ready
    cat /run/nxc/failed 2> /dev/null || true
    cmp /etc/nxc/deployment.json "$ns/srv/deployment.json" && echo "deployment.json is the served document"
} > "$ns/url-state" 2>&1
EOF
        unshare --mount --uts --net --pid --fork --propagation private bash "$ns/inside-url.sh" "$ns"
        check_status "namespace setup (URL)" $? 0
        check_content "$ns/url-status" "0"
        check_before "$ns/url-boot.log" "running: ip route replace default via 10.77.0.254" \
            "fetched the deployment from http://10.66.0.1:8080/deployment.json"
        check_log "$ns/http.log" '"GET /deployment.json HTTP/1.0" 200'
        check_log "$ns/url-state" "inet 10.77.0.1/24"
        check_log "$ns/url-state" "default via 10.77.0.254 dev v0"
        check_log "$ns/url-state" "10.88.0.0/16 via 10.77.0.254 dev v0"
        check_log "$ns/url-state" "deployment.json is the served document"
        check "ready file names the node" grep -qx server "$ns/url-state"
    fi
fi

echo
if [ "$failures" -eq 0 ]; then
    echo "nxc-agent tests: all $checks checks passed"
    exit 0
fi
echo "nxc-agent tests: $failures failed, $checks passed"
exit 1
