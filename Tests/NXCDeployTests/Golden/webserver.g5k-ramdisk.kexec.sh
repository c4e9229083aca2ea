#!/bin/sh
# Boots this bundle of composition 'webserver' (flavour g5k-ramdisk) on the machine that
# runs it, with kexec: no reboot through the firmware. Written by `nxc build`; `nxc start` runs it
# on every reserved host. By hand, as root, with kernel, initrd and this script in one folder:
#   ./kexec.sh NODE DEPLOYMENT.json
#   NXC_DEPLOYMENT_URL=http://ADDRESS:PORT/deployment.json NXC_NET='nxc.if=MAC,ADDR/PREFIX' ./kexec.sh NODE
# NXC_NET: words for the kernel command line (the node's network; nxc.root=URL for nfs-store).
# NXC_KEXEC_DELAY: seconds between loading and executing the kernel (default 1), so that the
# SSH session that started this script returns before the machine changes kernels.
set -eu
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
PATH=$PATH:/usr/sbin:/sbin
node=${1:?usage: kexec.sh NODE [DEPLOYMENT.json]}
delay=${NXC_KEXEC_DELAY:-1}
case $delay in
  ''|*[!0-9]*) printf 'kexec.sh: NXC_KEXEC_DELAY must be a whole number of seconds, not %s\n' "$delay" >&2; exit 2 ;;
esac
params='console=tty0 console=ttyS0,115200 panic=30 systemd.show_status=1 systemd.mask=serial-getty@ttyS0.service net.ifnames=0 retain_initrd'
if [ -n "${NXC_DEPLOYMENT_URL:-}" ]; then
  deployment="nxc.deployment_url=$NXC_DEPLOYMENT_URL ${NXC_NET:-}"
else
  deployment="nxc.deployment=$(base64 -w0 "${2:?give the deployment document}")${NXC_NET:+ $NXC_NET}"
fi
kexec -l "$here/kernel" --initrd="$here/initrd" --command-line="$params nxc.host=$node $deployment"
# The delay is an argument of that shell, never part of its script.
setsid sh -c 'sleep "$1"; sync; kexec -e' sh "$delay" </dev/null >/dev/null 2>&1 &
echo "nxc: $node loaded; kexec in $delay s"
