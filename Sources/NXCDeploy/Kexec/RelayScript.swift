/// The relay that passes the kexec bundle from host to host, so that this machine sends it once
/// whatever the number of hosts (issue 14): the hosts form a chain, this machine feeds the first
/// one over its SSH session, and each host unpacks the stream into its staging folder while it
/// sends it on to the next over TCP, as Kadeploy's chain broadcast does.
///
/// Why written here: the tools that broadcast files (TakTuk, Kascade/Kastafior, udpcast) are not
/// on a stock testbed host, need SSH from host to host (the hosts do not have nxc's key before
/// they are nodes) or multicast across switches. Perl is: `perl-base` is Essential in Debian, with
/// IO::Socket::INET. The script is fixed text run with `perl -e`, its arguments in argv.
///
/// What it trusts: nothing it receives. The listener takes the first connection that begins with
/// the start's token (32 random bytes as hex, given over SSH) and drops others; what arrives is
/// checked afterwards by its SHA-256 against this machine's, as every staged file is. A relay
/// that dies cuts its successors short: their staged files fail the check and are fed again.
enum RelayScript {
    /// argv: SOURCE (`listen` or `stdin`), PORTFILE, ROUTE, TOKEN, SECONDS, INTO. A listener takes
    /// an ephemeral port (written to PORTFILE), so all of them start at once; the head reads stdin.
    /// The rest of the chain travels with the stream: a listener reads it on the line after the
    /// token; the head has it in ROUTE (`ADDRESS,PORT` words, `-` for none). Each relay connects
    /// to the first host of its route and sends it the token and the rest; then it unpacks the
    /// stream with `tar -x -o -C INTO` while copying it on. Exits non-zero when its own copy failed,
    /// after SECONDS at the latest. Losing the next host is reported on stderr and does not stop it.
    static let perl = #"""
        use strict; use warnings; use IO::Socket::INET;
        my ($src, $portfile, $route, $token, $secs, $into) = @ARGV;
        $SIG{PIPE} = 'IGNORE';
        $SIG{ALRM} = sub { print STDERR "relay: no end after $secs s\n"; exit 3 };
        alarm($secs);
        my $in;
        if ($src eq 'listen') {
          my $l = IO::Socket::INET->new(Listen => 8, LocalPort => 0, Proto => 'tcp', ReuseAddr => 1)
            or die "relay: listen: $!\n";
          open(my $pf, '>', "$portfile.part") or die "relay: $portfile: $!\n";
          print $pf $l->sockport, "\n"; close $pf;
          rename("$portfile.part", $portfile) or die "relay: $portfile: $!\n";
          while (!$in) {
            my $c = $l->accept or die "relay: accept: $!\n";
            my ($got, $n) = ('', 0);
            while (length($got) < length($token) + 1) {
              $n = sysread($c, $got, length($token) + 1 - length($got), length($got));
              last if !$n;
            }
            if ($got eq "$token\n") { $in = $c } else { close $c }
          }
          close $l;
          $route = '';
          while (length($route) < 65536) {
            my $ch; my $n = sysread($in, $ch, 1);
            die "relay: no route after the token\n" if !$n;
            last if $ch eq "\n";
            $route .= $ch;
          }
        } else {
          $in = \*STDIN;
        }
        binmode $in;
        my @hops = grep { $_ ne '-' && $_ ne '' } split(/ /, $route);
        my $first = shift @hops;
        my ($naddr, $nport) = defined $first ? split(/,/, $first, 2) : ('-', 0);
        my $out;
        if ($naddr ne '-') {
          $out = IO::Socket::INET->new(PeerAddr => $naddr, PeerPort => $nport, Proto => 'tcp', Timeout => 20);
          if ($out) { binmode $out; $out->autoflush(1); print $out "$token\n" . (@hops ? join(' ', @hops) : '-') . "\n" or undef $out }
          else { print STDERR "relay: cannot reach the next host $naddr:$nport: $!\n" }
        }
        open(my $tar, '|-', 'tar', '-x', '-o', '-C', $into) or die "relay: tar: $!\n";
        binmode $tar;
        sub put { my ($fh, $b) = @_; my $o = 0;
          while ($o < length($b)) { my $w = syswrite($fh, $b, length($b) - $o, $o); return 0 if !defined $w; $o += $w }
          return 1 }
        my $buf;
        while (1) {
          my $n = sysread($in, $buf, 1 << 20);
          die "relay: read: $!\n" if !defined $n;
          last if $n == 0;
          put($tar, $buf) or die "relay: tar stopped reading: $!\n";
          if ($out && !put($out, $buf)) { print STDERR "relay: the next host $naddr:$nport went away: $!\n"; undef $out }
        }
        close $out if $out;
        close $tar or die "relay: tar failed (status $?)\n";
        exit 0;
        """#

    /// A relay in the middle or at the end of the chain. $1 staging folder, $2 token, $3 seconds,
    /// $4 the Perl relay. Starts the relay in a session of its own (it outlives this SSH session),
    /// waits (10 s at most) for its port and prints `@port N`. When the relay ends, the files it unpacked are renamed into the staging folder
    /// and `.relay.status` says `ok` or `failed`.
    static let listen = KexecScript.stage + "\n" + #"""
        set -e; stage "$1"; dir=$1
        rm -rf "$dir/.relay.in" "$dir/.relay.port" "$dir/.relay.port.part" "$dir/.relay.status" "$dir/.relay.pid"; mkdir "$dir/.relay.in"
        setsid sh -c '
          dir=$1; shift
          echo $$ > "$dir/.relay.pid"
          if perl -e "$3" listen "$dir/.relay.port" - "$1" "$2" "$dir/.relay.in"; then
            for f in "$dir"/.relay.in/*; do mv -f "$f" "$dir/"; done; rmdir "$dir/.relay.in"; echo ok > "$dir/.relay.status"
          else
            echo failed > "$dir/.relay.status"
          fi' sh "$dir" "$2" "$3" "$4" < /dev/null > /dev/null 2> "$dir/.relay.log" &
        n=0
        while [ ! -s "$dir/.relay.port" ]; do
          n=$((n + 1)); if [ $n -gt 100 ]; then echo "nxc: the relay did not listen: $(cat "$dir/.relay.log")" >&2; exit 4; fi
          sleep 0.1
        done
        echo "@port $(cat "$dir/.relay.port")"
        """#

    /// The head of the chain: reads the stream on stdin (this machine's SSH session). $1 staging
    /// folder, $2 token, $3 the route (`ADDRESS,PORT` words of the hosts after it, `-` for none),
    /// $4 seconds, $5 the Perl relay.
    static let head = KexecScript.stage + "\n" + #"""
        set -e; stage "$1"; dir=$1
        rm -rf "$dir/.relay.in" "$dir/.relay.status"; mkdir "$dir/.relay.in"
        perl -e "$5" stdin - "$3" "$2" "$4" "$dir/.relay.in"
        for f in "$dir"/.relay.in/*; do mv -f "$f" "$dir/"; done; rmdir "$dir/.relay.in"; echo ok > "$dir/.relay.status"
        """#

    /// Waits, $2 seconds at most, for the relay in staging folder $1 to end (a relay whose wrapper
    /// is gone without a status ends at once); prints `@relay STATUS`.
    /// A relay still running then is stopped (its session: the wrapper and perl), so that none
    /// outlives the start: its process group, after checking that its leader is that wrapper.
    static let wait = #"""
        n=0
        pid=$(cat "$1/.relay.pid" 2>/dev/null || true)
        while [ ! -e "$1/.relay.status" ] && [ $n -lt "$2" ]; do
          # Killed (its wrapper gone without a word): no use waiting.
          if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then sleep 1; [ -e "$1/.relay.status" ] || echo "failed (the relay died)" > "$1/.relay.status"; break; fi
          sleep 1; n=$((n + 1))
        done
        if [ ! -e "$1/.relay.status" ]; then
          if [ -n "$pid" ] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q 'relay.port'; then kill -TERM "-$pid" 2>/dev/null || true; fi
          echo "failed (stopped after $2 s)" > "$1/.relay.status"
        fi
        echo "@relay $(cat "$1/.relay.status")"
        """#
}
