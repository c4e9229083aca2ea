# Sourced by bench/g5k.sh and bench/scale.sh: the configuration of one simulated testbed host's
# sshd (this machine's sshd, in a network namespace of its own).
# sshd_conf ADDRESS FOLDER I: listens on ADDRESS; host key, authorized keys, PID file and the
# folder whose refusing `kexec` comes first on the sessions' PATH are under FOLDER.
sshd_conf() {
  cat <<EOF2
ListenAddress $1
Port 22
HostKey $2/host_ed25519
PidFile $2/sshd-$3.pid
AuthorizedKeysFile $2/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
X11Forwarding no
PrintMotd no
MaxStartups 100
SetEnv PATH=$2/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
EOF2
}
