#!/usr/bin/perl
# bench/report.pl — turns the raw output of bench/run.sh into results.
#
#   perl bench/report.pl --raw DIR --out OUT [--check bench/baseline.json]
#                        [--update-baseline bench/baseline.json]
#
# Reads OUT/raw/meta.tsv, OUT/raw/runs.tsv (one line per pgbench run, with
# the runs it is compared with), OUT/raw/sweep.jsonl (bench/micro.sql) and
# pgbench's per-transaction logs in DIR (-l --log-prefix=DIR/<run id>).
# Writes OUT/results.json, OUT/results.md (also printed) and OUT/*.png.
#
# How a run's figures are computed from its log:
#   - each client's first transaction includes the backend's start-up (the
#     policy set is compiled on the first decision of every backend), so the
#     measured window starts when the last client of the run has completed
#     its first transaction and ends with the last transaction; the start-up
#     is reported apart (warm-up: seconds until the window opens; first-tx:
#     the slowest first transaction);
#   - TPS = transactions completed in the window / its length;
#   - p50/p95/p99 = latencies (pgbench's, in microseconds, exact) of those
#     transactions, nearest rank;
#   - a spike run's window is that of its 2 base clients: the burst of 62
#     clients, start-up included, is what is measured.
# Ratios are decisions/s over the compared run's rate (transactions/s for
# SELECT 1 and the RLS reads).
#
# --check: every ratio in the baseline's section for this scale and mode
# must be at least 90% of its baseline value; exit status 3 if not.
# --update-baseline: rewrites that section with this run's ratios.
use strict;
use warnings;
use Getopt::Long;
use JSON::PP;
use List::Util qw(max min sum);
use POSIX qw(ceil floor);

my ($raw, $out, $check, $update);
GetOptions('raw=s' => \$raw, 'out=s' => \$out, 'check=s' => \$check,
           'update-baseline=s' => \$update) or die "report.pl: bad options\n";
die "report.pl: --raw and --out are required\n" unless defined $raw && defined $out;

my $REGRESSION_TOLERANCE = 0.10;
my $json = JSON::PP->new->canonical->pretty;

# ---------------------------------------------------------------------------
# Inputs

my %meta;
open my $mfh, '<', "$out/raw/meta.tsv" or die "report.pl: $out/raw/meta.tsv: $!\n";
while (<$mfh>) {
    chomp;
    my ($k, $v) = split /\t/, $_, 2;
    $meta{$k} = $v;
}
close $mfh;

my @runs;
if (open my $rfh, '<', "$out/raw/runs.tsv") {
    my $header = <$rfh>;
    chomp $header;
    my @cols = split /\t/, $header;
    while (<$rfh>) {
        chomp;
        my @f = split /\t/;
        my %r;
        @r{@cols} = map { defined $_ && $_ ne '-' ? $_ : undef } @f;
        push @runs, \%r;
    }
    close $rfh;
}

# The scale sweep: one line per micro-benchmark session; per scale, the
# median of the sessions that other work did not disturb (of all of them
# if none is clean).
my (@sweep, @sweep_sessions);
if (open my $sfh, '<', "$out/raw/sweep.jsonl") {
    while (<$sfh>) {
        next unless /^\s*\{/;
        push @sweep_sessions, decode_json($_);
    }
    close $sfh;
}
{
    my $limit = $meta{other_cpu_limit} // 10;
    my %by;
    push @{ $by{ $_->{policies} } }, $_ for @sweep_sessions;
    for my $p (sort { $a <=> $b } keys %by) {
        my @all = @{ $by{$p} };
        my @clean = grep { ($_->{other_cpu_pct} // 0) <= $limit } @all;
        my @used = @clean ? @clean : @all;
        my $med = sub {
            my ($k) = @_;
            my @v = sort { $a <=> $b } map { $_->{$k} } @used;
            return @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
        };
        push @sweep, {
            policies => $p + 0, calls => $used[0]{calls}, entities => $used[0]{entities},
            decision_cache_guc => $used[0]{decision_cache_guc},
            (map { ($_ => 0 + sprintf('%.3f', $med->($_))) } qw(load_ms cold_us warm_us allowed_us)),
            other_cpu_pct => 0 + sprintf('%.1f', sum(map { $_->{other_cpu_pct} // 0 } @used) / @used),
            sessions => scalar @all, sessions_used => scalar @used,
            disturbed => @clean ? JSON::PP::false : JSON::PP::true,
        };
    }
}

# ---------------------------------------------------------------------------
# pgbench logs

sub log_files {
    my ($prefix) = @_;
    return grep { -f $_ } glob("$raw/$prefix.[0-9]*");
}

# Calls $cb->(client, latency_us or undef if failed, end time) for each line.
sub each_transaction {
    my ($files, $cb) = @_;
    for my $file (@$files) {
        open my $fh, '<', $file or die "report.pl: $file: $!\n";
        while (my $line = <$fh>) {
            my @f = split ' ', $line;
            next if @f < 6;
            my $end = $f[4] + $f[5] / 1e6;
            my $lat = $f[2] =~ /^\d+$/ ? $f[2] : undef;
            $cb->("$file/$f[0]", $lat, $end);
        }
        close $fh;
    }
}

sub percentile {    # nearest rank over a histogram {latency_us => count}
    my ($hist, $n, $p) = @_;
    return undef unless $n;
    my $rank = max(1, ceil($p * $n));
    my $seen = 0;
    for my $v (sort { $a <=> $b } keys %$hist) {
        $seen += $hist->{$v};
        return $v if $seen >= $rank;
    }
    return undef;
}

sub hist_summary {
    my ($hist, $n, $seconds) = @_;
    return {
        transactions => $n,
        tps          => ($seconds > 0 ? $n / $seconds : undef),
        p50_ms       => ms(percentile($hist, $n, 0.50)),
        p95_ms       => ms(percentile($hist, $n, 0.95)),
        p99_ms       => ms(percentile($hist, $n, 0.99)),
    };
}

sub ms { my ($us) = @_; return defined $us ? $us / 1000 : undef; }

# One measurement window over the logs of the given prefixes: it opens when
# the last client of the first prefix has completed its first transaction
# and closes with the last transaction. Returns the latency histogram and
# the figures of the window.
sub analyse_window {
    my ($prefixes, $duration, $spike) = @_;
    my @primary = log_files($prefixes->[0]);
    my @all = map { log_files($_) } @$prefixes;
    return { error => 'no pgbench log' } unless @primary;

    # Pass 1: when each client of the primary prefix completed its first
    # transaction, and the first start and last end.
    my (%first_end, %first_lat);
    my ($t_start, $t_end);
    my $primary_set = { map { $_ => 1 } @primary };
    each_transaction(\@all, sub {
        my ($client, $lat, $end) = @_;
        my $start = $end - ($lat // 0) / 1e6;
        $t_start = $start if !defined $t_start || $start < $t_start;
        $t_end = $end if !defined $t_end || $end > $t_end;
        my ($file) = $client =~ m{^(.*)/[^/]*$};
        return unless $primary_set->{$file};
        if (!defined $first_end{$client} || $end < $first_end{$client}) {
            $first_end{$client} = $end;
            $first_lat{$client} = $lat;
        }
    });
    return { error => 'empty pgbench log' } unless defined $t_start;
    my $window_start = max(values %first_end);

    # Pass 2: latencies in the window, overall, per time bucket and per
    # spike phase.
    $duration ||= $t_end - $t_start;
    my $bucket = max(1, int($duration / 100 + 0.5));
    my (%hist, %bhist, %bn, @phist, @pn);
    my ($n, $failed, $n_all) = (0, 0, 0);
    each_transaction(\@all, sub {
        my ($client, $lat, $end) = @_;
        if (!defined $lat) { $failed++; return; }
        $n_all++;
        my $b = int(($end - $t_start) / $bucket);
        $bhist{$b}{$lat}++;
        $bn{$b}++;
        if ($spike) {
            my $phase = min(2, int(($end - $t_start) / $spike));
            $phist[$phase]{$lat}++;
            $pn[$phase]++;
        }
        return if $end <= $window_start;    # the transaction that opens the window is not in it
        $hist{$lat}++;
        $n++;
    });
    my @timeline;
    for my $b (sort { $a <=> $b } keys %bn) {
        my $len = min($bucket, max(1e-3, $t_end - ($t_start + $b * $bucket)));
        push @timeline, { t_s => $b * $bucket, tps => $bn{$b} / $len,
                          p99_ms => ms(percentile($bhist{$b}, $bn{$b}, 0.99)) };
    }
    my %w = (hist => \%hist, n => $n, n_all => $n_all, failed => $failed, window => $t_end - $window_start,
             warmup => $window_start - $t_start,
             first_tx_ms => ms(max(map { $_ // 0 } values %first_lat)),
             clients => scalar keys %first_end,
             timeline => { bucket_s => $bucket, points => \@timeline });
    if ($spike) {
        my @names = ('before (2 clients)', 'burst (64 clients)', 'after (2 clients)');
        $w{phases} = [ map {
            my $len = $_ < 2 ? $spike : max(1e-3, $t_end - ($t_start + 2 * $spike));
            { phase => $names[$_], %{ hist_summary($phist[$_] // {}, $pn[$_] // 0, $len) } }
        } 0 .. 2 ];
    }
    return \%w;
}

# slices.tsv: one line per slice (the kept attempt): the CPU snapshots, the
# decide_stats snapshots, the group (the measure call of run.sh it belongs
# to). A slice is clean when other processes took at most other_cpu_limit %
# of the machine during it.
my $LIMIT = $meta{other_cpu_limit} // 10;
my (%slices, %slice_of);
if (open my $sfh, '<', "$out/raw/slices.tsv") {
    my $header = <$sfh>;
    chomp $header;
    my @cols = split /\t/, $header;
    while (<$sfh>) {
        chomp;
        my %r;
        @r{@cols} = split /\t/;
        my ($m0, $o0) = split m{/}, ($r{cpu_before} // '');
        my ($m1, $o1) = split m{/}, ($r{cpu_after} // '');
        $r{capacity} = ($meta{cpus} || 1) * ($meta{clock_ticks} || 100) * max(1e-3, $r{end} - $r{start});
        if (defined $o1 && defined $o0) {
            $r{other_ticks} = max(0, ($m1 - $m0) - ($o1 - $o0));
            $r{own_ticks} = $o1 - $o0;
            $r{other_cpu_pct} = 100 * $r{other_ticks} / $r{capacity};
        }
        $r{clean} = !defined $r{other_cpu_pct} || $r{other_cpu_pct} <= $LIMIT;
        $r{group} //= '';
        push @{ $slices{ $r{id} } }, \%r;
        $slice_of{$_} = \%r for split /,/, $r{prefixes};
    }
    close $sfh;
}

# A run: its slices (one window each; the figures pool the clean slices, or
# all of them if none is clean), or a spike (one window over the base
# clients' logs and the burst's).
sub analyse_run {
    my ($run) = @_;
    my @prefixes = split /,/, ($run->{prefixes} // $run->{id});
    my @windows;
    if (($run->{mode} // '') eq 'spike') {
        my ($spike) = ($run->{extra} // '') =~ /spike=(\d+)s/;
        @windows = (analyse_window(\@prefixes, $run->{duration}, $spike));
        $windows[0]{prefix} = $prefixes[0];
    } else {
        my $each = ($run->{duration} || 0) / @prefixes;
        @windows = map { analyse_window([$_], $each) } @prefixes;
        $windows[$_]{prefix} = $prefixes[$_] for 0 .. $#prefixes;
    }
    for my $w (@windows) { return { error => $w->{error} } if $w->{error}; }
    for my $w (@windows) {
        my $sl = $slice_of{ $w->{prefix} } // {};
        $w->{clean} = $sl->{clean} // 1;
        $w->{slice} = $sl;
    }
    my @used = grep { $_->{clean} } @windows;
    @used = @windows unless @used;
    my (%hist, $n, $window, $failed, $n_all, $own, $other, $capacity, $decisions, $hits, $enq, $drop);
    for my $w (@used) {
        $hist{$_} += $w->{hist}{$_} for keys %{ $w->{hist} };
        $n += $w->{n};
        $n_all += $w->{n_all};
        $window += $w->{window};
        $failed += $w->{failed};
        my $sl = $w->{slice};
        if (defined $sl->{own_ticks}) {
            $own += $sl->{own_ticks};
            $other += $sl->{other_ticks};
            $capacity += $sl->{capacity};
        }
        # decide_stats over the slice: hit ratio; decision log
        my @hb = split ' ', ($sl->{hits_before} // '');
        my @ha = split ' ', ($sl->{hits_after} // '');
        if (@hb >= 2 && @ha >= 2) {
            $decisions += $ha[0] - $hb[0];
            $hits += $ha[1] - $hb[1];
        }
        if (@hb == 4 && @ha == 4 && "$hb[2]$ha[2]" =~ /^\d+$/) {
            $enq += $ha[2] - $hb[2];
            $drop += $ha[3] - $hb[3] if "$hb[3]$ha[3]" =~ /^\d+$/;
        }
    }
    my $s = hist_summary(\%hist, $n, $window);
    $s->{failed} = $failed;
    $s->{transactions_all} = $n_all;
    $s->{window_s} = $window;
    $s->{warmup_s} = max(map { $_->{warmup} } @windows);
    $s->{first_tx_max_ms} = max(map { $_->{first_tx_ms} // 0 } @windows);
    $s->{slices_used} = scalar @used;
    $s->{slices_clean} = scalar grep { $_->{clean} } @windows;
    $s->{slices} = [ map { {
        prefix => $_->{prefix}, group => $_->{slice}{group}, transactions => $_->{n},
        tps => ($_->{window} > 0 ? $_->{n} / $_->{window} : undef),
        window_s => $_->{window}, warmup_s => $_->{warmup},
        other_cpu_pct => (defined $_->{slice}{other_cpu_pct} ? 0 + sprintf('%.1f', $_->{slice}{other_cpu_pct}) : undef),
        attempts => ($_->{slice}{attempts} // 1) + 0,
        clean => ($_->{clean} ? JSON::PP::true : JSON::PP::false) } } @windows ];
    if ($capacity) {
        $s->{other_cpu_pct} = 100 * $other / $capacity;
        $s->{own_cpu_pct} = 100 * $own / $capacity;
        $s->{cpu_us_per_transaction} = $own * 1e6 / ($meta{clock_ticks} || 100) / $n_all if $n_all;
    }
    $s->{disturbed} = $s->{slices_clean} ? JSON::PP::false : JSON::PP::true;
    $s->{hit_ratio} = $hits / $decisions if $decisions;
    $s->{log_enqueued} = $enq if defined $enq;
    $s->{log_dropped} = $drop if defined $drop;
    if (@windows == 1) {
        $s->{timeline} = $windows[0]{timeline};
        $s->{phases} = $windows[0]{phases} if $windows[0]{phases};
    }
    return $s;
}

# ---------------------------------------------------------------------------
# Rows and ratios

my %by_id;
my @rows;
for my $run (@runs) {
    my $a = $run->{status} eq 'ok' ? analyse_run($run) : { error => 'pgbench failed' };
    my %row = (
        id => $run->{id}, workload => $run->{workload}, kind => $run->{kind},
        clients => $run->{clients}, decisions_per_transaction => $run->{per_call} + 0,
        status => ($a->{error} ? "failed: $a->{error}" : 'ok'),
        duration_s => $run->{duration} + 0,
        compared_with => { select1 => $run->{vs_select1}, sql => $run->{vs_sql},
                           sql_label => $run->{vs_sql_label} },
        %$a,
    );
    delete $row{error};
    if ($row{status} eq 'ok' && $row{decisions_per_transaction} > 0 && defined $row{tps}) {
        $row{decisions_per_s} = $row{tps} * $row{decisions_per_transaction};
    }
    for my $kv (split /;/, ($run->{extra} // '')) {
        my ($k, $v) = split /=/, $kv, 2;
        $row{notes}{$k} = $v if defined $v;
    }
    push @rows, \%row;
    $by_id{$row{id}} = \%row;
}

sub rate {    # decisions/s, or transactions/s for runs that are not decisions
    my ($row) = @_;
    return undef unless $row && $row->{status} eq 'ok';
    return $row->{decisions_per_s} // $row->{tps};
}

# A ratio compares two runs round by round: the k-th slice of one with the
# k-th slice of the other in the same group (the same measure call of
# run.sh: interleaved, so under the same conditions). It is the median of
# those pairs' ratios, over the pairs where neither slice was disturbed if
# there is one, else over all (and then it counts as disturbed). Runs never
# measured together fall back to their pooled rates.
my %ratio_quality;
sub slice_rate {
    my ($row, $sl) = @_;
    return undef unless $sl->{window_s} && $sl->{window_s} > 0;
    return $sl->{transactions} * ($row->{decisions_per_transaction} || 1) / $sl->{window_s};
}
sub median {
    my @v = sort { $a <=> $b } @_;
    return undef unless @v;
    return @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
}
sub ratio {
    my ($row, $other_id) = @_;
    return undef unless defined $other_id;
    my $other = $by_id{$other_id};
    return undef unless $other && rate($row) && rate($other);
    my (%mine, %theirs);
    push @{ $mine{ $_->{group} // '' } }, $_ for @{ $row->{slices} // [] };
    push @{ $theirs{ $_->{group} // '' } }, $_ for @{ $other->{slices} // [] };
    my (@all, @clean);
    for my $g (grep { $_ ne '' && $theirs{$_} } keys %mine) {
        my ($a, $b) = ($mine{$g}, $theirs{$g});
        for my $k (0 .. min($#$a, $#$b)) {
            my ($ra, $rb) = (slice_rate($row, $a->[$k]), slice_rate($other, $b->[$k]));
            next unless defined $ra && defined $rb && $rb > 0;
            push @all, $ra / $rb;
            push @clean, $ra / $rb if $a->[$k]{clean} && $b->[$k]{clean};
        }
    }
    my $key = "$row->{id} $other_id";
    if (!@all) {
        $ratio_quality{$key} = { pairs => 0, clean => 0, disturbed => ($row->{disturbed} || $other->{disturbed}) ? 1 : 0 };
        return rate($row) / rate($other);
    }
    $ratio_quality{$key} = { pairs => scalar @all, clean => scalar @clean, disturbed => @clean ? 0 : 1 };
    return median(@clean ? @clean : @all);
}

my %ratios;        # the figures the regression check compares
my %informative;   # ratios reported but not checked
my %ratio_runs;    # the runs each depends on
# Not checked: the SQL baseline against SELECT 1 (it measures the reference,
# not decide), and the churn and spike runs (one slice each under conditions
# that cannot be interleaved with their baselines; their run-to-run spread
# on this machine exceeds the tolerance).
sub checked_ratio {
    my ($key) = @_;
    return $key !~ /^(ref-|churn\@|spike )/;
}
sub keep_ratio {
    my ($key, $value, @ids) = @_;
    return unless defined $value;
    if (checked_ratio($key)) { $ratios{$key} = $value; } else { $informative{$key} = $value; }
    $ratio_runs{$key} = [@ids];
}
for my $row (@rows) {
    $row->{ratio_select1} = ratio($row, $row->{compared_with}{select1});
    $row->{ratio_sql} = ratio($row, $row->{compared_with}{sql});
    if (my $nc = $row->{notes}{no_churn}) {
        $row->{ratio_no_churn} = ratio($row, $nc);
        keep_ratio("$row->{id} x no churn", $row->{ratio_no_churn}, $row->{id}, $nc);
    }
    if (my $off = $row->{notes}{logging_off}) {
        # the cost of the decision log: rate with it on / rate with it off
        $row->{ratio_logging_on_to_off} = ratio($row, $off);
        keep_ratio("$row->{id} x logging off", $row->{ratio_logging_on_to_off}, $row->{id}, $off);
    }
    next if $row->{id} =~ /^soak/;
    keep_ratio("$row->{id} x SELECT 1", $row->{ratio_select1}, $row->{id}, $row->{compared_with}{select1});
    my $what = $row->{compared_with}{sql_label} && $row->{compared_with}{sql_label} =~ /no RLS/
        ? 'no RLS' : 'SQL baseline';
    keep_ratio("$row->{id} x $what", $row->{ratio_sql}, $row->{id}, $row->{compared_with}{sql});
}
sub disturbed_runs {    # the runs that make a ratio unreliable: none if one clean pair
    my ($key) = @_;
    my @ids = @{ $ratio_runs{$key} // [] };
    my $q = @ids == 2 ? $ratio_quality{"$ids[0] $ids[1]"} : undef;
    return $q->{disturbed} ? @ids : () if $q && $q->{pairs};
    return grep { $by_id{$_} && $by_id{$_}{disturbed} } @ids;
}
sub ratio_cell {
    my ($row, $other_id, $value) = @_;
    my $q = defined $other_id ? $ratio_quality{"$row->{id} $other_id"} : undef;
    return fratio($value) . ($q && $q->{disturbed} ? ' ⚠' : '');
}

my %sweep_by = map { $_->{policies} => $_ } @sweep;
if ($sweep_by{1000} && $sweep_by{100000} && $sweep_by{100000}{warm_us} > 0) {
    keep_ratio('sweep: warm cost at 1k / at 100k policies',
               $sweep_by{1000}{warm_us} / $sweep_by{100000}{warm_us});
    for my $p (1000, 100000) {
        push @{ $ratio_runs{'sweep: warm cost at 1k / at 100k policies'} }, "sweep\@$p";
        $by_id{"sweep\@$p"} = { disturbed => $sweep_by{$p}{disturbed} };
    }
}

# ---------------------------------------------------------------------------
# Targets

my $caches = defined $meta{decision_cache_guc} && $meta{decision_cache_guc} ne '';
my @targets;
sub target {
    my ($what, $measured, $goal, $ok, $pending_caches) = @_;
    my $verdict = !defined $ok ? 'not measured'
        : $ok ? 'met'
        : ($pending_caches && !$caches) ? 'missed (pending caches)'
        : 'missed';
    push @targets, { target => $what, measured => $measured, goal => $goal, verdict => $verdict };
}
{
    my $s = $sweep_by{10000};
    target('uncached decide() in the backend at 10k policies',
           $s ? sprintf('%.2f µs warm, %.2f µs cold', $s->{warm_us}, $s->{cold_us}) : 'n/a',
           '< 10 µs', $s ? $s->{warm_us} < 10 : undef);
    my ($a, $b) = ($sweep_by{1000}, $sweep_by{100000});
    my $r = $a && $b && $a->{warm_us} > 0 ? $b->{warm_us} / $a->{warm_us} : undef;
    target('cost at 100k policies / at 1k', defined $r ? sprintf('%.2f× (warm)', $r) : 'n/a',
           '≤ 2×', defined $r ? $r <= 2 : undef);
    my $hot = $by_id{'hot@2'};
    target('hot decide() TPS / SELECT 1 TPS (2 clients)',
           defined $hot && defined $hot->{ratio_select1} ? sprintf('%.2f×', $hot->{ratio_select1}) : 'n/a',
           '≥ 0.9×', defined $hot && defined $hot->{ratio_select1} ? $hot->{ratio_select1} >= 0.9 : undef, 1);
    my $cold = $by_id{'cold@2'};
    my $at10k = $meta{policies} && $meta{policies} == 10000;
    target('cold decide() / SQL baseline at 10k policies',
           defined $cold && defined $cold->{ratio_sql}
               ? sprintf('%.0f×%s', $cold->{ratio_sql}, $at10k ? '' : " (at $meta{policies} policies)") : 'n/a',
           '≥ 20×', defined $cold && defined $cold->{ratio_sql} && $at10k ? $cold->{ratio_sql} >= 20 : undef);
    my $rls = $by_id{'rls@1'};
    my $slow = defined $rls && defined $rls->{ratio_sql} && $rls->{ratio_sql} > 0 ? 1 / $rls->{ratio_sql} : undef;
    target('RLS read of 100k rows / the same read without RLS',
           defined $slow ? sprintf('%.0f× slower (%.0f ms vs %.1f ms at p50)', $slow,
                                   $rls->{p50_ms}, $by_id{'rls-plain@1'}{p50_ms}) : 'n/a',
           '≤ 3× slower', defined $slow ? $slow <= 3 : undef);
}

# ---------------------------------------------------------------------------
# Markdown

sub f {
    my ($v, $fmt) = @_;
    return '—' unless defined $v;
    return sprintf($fmt, $v);
}
sub fnum {    # a rate: no decimals when large
    my ($v) = @_;
    return '—' unless defined $v;
    return $v >= 100 ? sprintf('%.0f', $v) : sprintf('%.1f', $v);
}
sub fratio {
    my ($v) = @_;
    return '—' unless defined $v;
    return $v >= 10 ? sprintf('%.0f×', $v) : $v >= 0.1 ? sprintf('%.2f×', $v) : sprintf('%.3f×', $v);
}

my @md;
push @md, "## decide benchmark — scale $meta{scale}, $meta{mode} run";
push @md, '';
push @md, sprintf('%s policies, %s actors in %s roles, %s resources; %ss per run; %s.',
                  map { $meta{$_} } qw(policies actors roles resources duration postgres));
push @md, sprintf('decide %s built from the %s; %s CPUs (%s); started %s, %s s in all.',
                  $meta{extension_version}, $meta{built_from}, $meta{cpus}, $meta{cpu_model},
                  $meta{started}, $meta{elapsed_s} // '?');
push @md, '';
if (@rows) {
    push @md, '| workload | clients | TPS | decisions/s | × SELECT 1 | × SQL baseline | p50 ms | p95 ms | p99 ms | hit ratio | CPU µs/tx | warm-up s | other CPU |';
    push @md, '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|';
    my $footnote = 0;
    for my $r (@rows) {
        if ($r->{status} ne 'ok') {
            push @md, "| $r->{workload} | $r->{clients} | $r->{status} | | | | | | | | | | |";
            next;
        }
        my $sql = ratio_cell($r, $r->{compared_with}{sql}, $r->{ratio_sql});
        if (defined $r->{ratio_sql} && $r->{compared_with}{sql_label}) {
            $sql .= ' ¹' if $r->{compared_with}{sql_label} =~ /per decision/;
            $sql .= ' ²' if $r->{compared_with}{sql_label} =~ /no RLS/;
            $footnote = 1;
        }
        push @md, sprintf('| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |',
            $r->{workload}, $r->{clients}, fnum($r->{tps}), fnum($r->{decisions_per_s}),
            ratio_cell($r, $r->{compared_with}{select1}, $r->{ratio_select1}), $sql, f($r->{p50_ms}, '%.3f'), f($r->{p95_ms}, '%.3f'),
            f($r->{p99_ms}, '%.3f'), defined $r->{hit_ratio} ? sprintf('%.1f%%', 100 * $r->{hit_ratio}) : 'n/a',
            fnum($r->{cpu_us_per_transaction}), f($r->{warmup_s}, '%.2f'),
            f($r->{other_cpu_pct}, '%.0f%%')
                . (($r->{slices} && @{ $r->{slices} } > 1) ? " ($r->{slices_clean}/" . scalar(@{ $r->{slices} }) . ')' : '')
                . ($r->{disturbed} ? ' ⚠' : ''));
    }
    push @md, '';
    push @md, sprintf('Each run is measured in %s slice(s) interleaved with its baselines (runs with 32+ clients and spikes: one); '
            . 'TPS, decisions/s and latencies come from pgbench\'s per-transaction logs, counted in each slice from the moment '
            . 'every client has finished its first transaction (warm-up s: the longest wait for that; it includes compiling '
            . 'the policy set in each new backend). × = decisions/s over the compared run\'s rate at the same number of clients. ',
            $meta{rounds} // 1)
            . 'CPU µs/tx: CPU time of the server and pgbench per transaction (both cores), a cost that does not depend on '
            . 'the share of the machine the run got. '
            . 'other CPU: share of the machine\'s CPU taken by processes outside this benchmark during the slices used '
            . "(the machine may be shared), and how many of the run's slices stayed under $LIMIT%: a slice above is run again "
            . 'after a quiet moment, within a time budget; figures pool the clean slices, ratios are the median of the '
            . 'clean rounds (a slice and its baseline\'s in the same round). ⚠: no clean slice or round, so the figure '
            . 'is less reliable and the regression check skips it.';
    push @md, '¹ batch: against the SQL baseline\'s cold decisions/s (one decision per call). '
            . '² RLS: against the same read with no RLS policy (bench_plain, BYPASSRLS).' if $footnote;
    for my $r (@rows) {
        if (defined $r->{ratio_no_churn}) {
            push @md, '';
            push @md, sprintf('Policy churn: %s policy changes committed during the run; TPS %.2f× that of zipf without churn.',
                              $r->{notes}{changes} // '?', $r->{ratio_no_churn});
        }
        if (defined $r->{ratio_logging_on_to_off}) {
            my $off = $by_id{ $r->{notes}{logging_off} };
            push @md, '';
            push @md, sprintf('Decision log: zipf with decide.log = all runs at %.2f× the rate with the log off '
                              . '(%s vs %s CPU µs per decision); %s decisions were appended to the log ring during it, %s dropped.',
                              $r->{ratio_logging_on_to_off}, fnum($r->{cpu_us_per_transaction}),
                              fnum($off->{cpu_us_per_transaction}), $r->{log_enqueued} // '?', $r->{log_dropped} // '?');
        }
        if ($r->{phases}) {
            push @md, '';
            push @md, "Spike phases, $r->{workload}: " . join('; ', map {
                sprintf('%s %s TPS, p99 %s ms', $_->{phase}, fnum($_->{tps}), f($_->{p99_ms}, '%.2f'))
            } @{ $r->{phases} }) . '.';
        }
        if ($r->{id} =~ /^soak/ && $r->{timeline}) {
            my @p = @{ $r->{timeline}{points} };
            my $k = max(1, int(@p / 10));
            my @head = @p[1 .. min($k, $#p)];
            my @tail = @p[max(0, $#p - $k) .. $#p - 1];
            my $first = sum(map { $_->{tps} } @head) // 0;
            my $last = sum(map { $_->{tps} } @tail) // 0;
            my $worst_p99 = sub { max(map { $_->{p99_ms} // 0 } @_) // 0 };
            push @md, '';
            push @md, sprintf('Soak: TPS in the last tenth %.2f× that of the first; worst p99 of a %s s interval %.2f ms in the first tenth, '
                              . '%.2f ms in the last; the 8 client backends\' private memory (RssAnon) %s kB a minute in, %s kB at the end; '
                              . 'server RSS %s kB before, %s kB after.',
                              $first > 0 ? $last / $first : 0, $r->{timeline}{bucket_s}, $worst_p99->(@head),
                              $worst_p99->(@tail), $r->{notes}{backend_anon_kb_first} // '?',
                              $r->{notes}{backend_anon_kb_last} // '?', $r->{notes}{rss_kb_before} // '?',
                              $r->{notes}{rss_kb_after} // '?');
        }
    }
    push @md, '';
}
if (@sweep) {
    push @md, '### Cost of one uncached decision in the backend (bench/micro.sql)';
    push @md, '';
    push @md, sprintf('10,000 actors in 50 roles, 50,000 resources; one statement of %s decide() calls, minus the same statement without them.',
                      $sweep[0]{calls} =~ s/(\d)(?=(\d{3})+$)/$1,/gr);
    push @md, '';
    push @md, '| policies | policy-set load ms | cold µs | warm µs | decide_allowed() µs | warm / warm at 1k | other CPU |';
    push @md, '|---:|---:|---:|---:|---:|---:|---:|';
    my $base = $sweep_by{1000} ? $sweep_by{1000}{warm_us} : undef;
    for my $s (@sweep) {
        push @md, sprintf('| %d | %.1f | %.2f | %.2f | %.2f | %s | %s |', $s->{policies}, $s->{load_ms},
                          $s->{cold_us}, $s->{warm_us}, $s->{allowed_us},
                          $base ? sprintf('%.2f×', $s->{warm_us} / $base) : '—',
                          defined $s->{other_cpu_pct}
                              ? sprintf('%.0f%%', $s->{other_cpu_pct})
                                . ($s->{sessions} > 1 ? " ($s->{sessions_used}/$s->{sessions})" : '')
                                . ($s->{disturbed} ? ' ⚠' : '')
                              : '—');
    }
    push @md, '';
    push @md, 'cold: first pass of a new backend (entities fetched and their ancestors computed); '
            . 'warm: median of three passes with the entity cache filled. Each figure is the median over the '
            . 'micro benchmark\'s sessions (fresh connections, scales in turn) that other work left undisturbed. '
            . ($sweep[0]{decision_cache_guc} ? 'decide.cache = off for all passes.' : 'No decision cache exists in this build.');
    push @md, '';
}
if (@targets) {
    push @md, '### Targets';
    push @md, '';
    push @md, '| target | measured | goal | verdict |';
    push @md, '|---|---|---|---|';
    push @md, "| $_->{target} | $_->{measured} | $_->{goal} | $_->{verdict} |" for @targets;
    push @md, '';
}

# ---------------------------------------------------------------------------
# Charts

my @charts;
sub gnuplot {
    my ($name, $script) = @_;
    open my $gp, '|-', 'gnuplot' or do { warn "report.pl: gnuplot: $!\n"; return; };
    print $gp "set terminal pngcairo size 1100,650 font 'DejaVu Sans,10' noenhanced\nset output '$out/$name'\n$script";
    close $gp;
    if ($? == 0 && -s "$out/$name") { push @charts, $name; }
    else { warn "report.pl: gnuplot failed for $name\n"; }
}
my @ok = grep { $_->{status} eq 'ok' && defined $_->{tps} } @rows;
if (@ok) {
    my $last = $#ok + 0.6;
    open my $dat, '>', "$out/workloads.dat" or die;
    print $dat "# label\ttps\tp99_ms\tkind(0 decide,1 SELECT 1,2 SQL/other baseline)\n";
    for my $r (@ok) {
        my $label = "$r->{workload} \@$r->{clients}";
        $label =~ s/"/'/g;
        my $kind = $r->{kind} eq 'decide' ? 0 : $r->{workload} eq 'SELECT 1' ? 1 : 2;
        printf $dat "\"%s\"\t%.3f\t%.4f\t%d\n", $label, $r->{tps}, $r->{p99_ms} // 0, $kind;
    }
    close $dat;
    my $common = <<"GP";
set style fill solid 0.8 border -1
set boxwidth 0.7
set xtics rotate by -40 left
set xrange [-0.6:$last]
set grid ytics
set key outside top center horizontal
set logscale y
set bmargin 12
set rmargin 8
GP
    gnuplot('tps_by_workload.png', $common . <<"GP");
set title "Transactions per second by workload (scale $meta{scale}, $meta{mode} run; log scale)"
set ylabel 'transactions/s'
plot '$out/workloads.dat' using 0:(\$4==0?\$2:1/0):xtic(1) with boxes lc rgb '#1f77b4' title 'decide', \\
     '' using 0:(\$4==1?\$2:1/0) with boxes lc rgb '#7f7f7f' title 'SELECT 1', \\
     '' using 0:(\$4==2?\$2:1/0) with boxes lc rgb '#ff7f0e' title 'SQL / no-RLS baseline'
GP
    gnuplot('p99_by_workload.png', $common . <<"GP");
set title "p99 latency by workload (scale $meta{scale}, $meta{mode} run; log scale)"
set ylabel 'p99 latency, ms'
plot '$out/workloads.dat' using 0:(\$4==0?\$3:1/0):xtic(1) with boxes lc rgb '#1f77b4' title 'decide', \\
     '' using 0:(\$4==1?\$3:1/0) with boxes lc rgb '#7f7f7f' title 'SELECT 1', \\
     '' using 0:(\$4==2?\$3:1/0) with boxes lc rgb '#ff7f0e' title 'SQL / no-RLS baseline'
GP
}
if (@sweep) {
    open my $dat, '>', "$out/sweep.dat" or die;
    print $dat "# policies\tcold_us\twarm_us\tallowed_us\tload_ms\n";
    printf $dat "%d\t%.3f\t%.3f\t%.3f\t%.3f\n", @{$_}{qw(policies cold_us warm_us allowed_us load_ms)} for @sweep;
    close $dat;
    my $ymax = max(12, map { 1.15 * $_->{cold_us} } @sweep);
    gnuplot('cost_vs_policies.png', <<"GP");
set title 'Cost of one uncached decision in the backend vs number of policies'
set xlabel 'active policies (log scale)'
set ylabel 'µs per decision'
set logscale x
set xrange [500:200000]
set yrange [0:$ymax]
set grid
set key top left
plot '$out/sweep.dat' using 1:2 with linespoints lw 2 pt 7 title 'decide(), cold entity cache', \\
     '' using 1:3 with linespoints lw 2 pt 7 title 'decide(), warm', \\
     '' using 1:4 with linespoints lw 2 pt 7 title 'decide_allowed(), warm', \\
     10 with lines dt 2 lc rgb '#d62728' title 'target at 10k: 10 µs'
GP
}
for my $r (grep { $_->{phases} && $_->{timeline} } @rows) {
    my $file = "$out/$r->{id}.dat";
    open my $dat, '>', $file or die;
    printf $dat "%d\t%.1f\t%.4f\n", $_->{t_s}, $_->{tps}, $_->{p99_ms} // 0 for @{ $r->{timeline}{points} };
    close $dat;
    (my $png = "$r->{id}_timeline.png") =~ s/[^A-Za-z0-9_.-]/_/g;
    my $third = $r->{notes}{spike} =~ s/s$//r;
    gnuplot($png, <<"GP");
set title "Spike ($r->{workload}): 2 clients, 64 from ${third}s to @{[2 * $third]}s, then 2"
set xlabel 'seconds'
set ylabel 'transactions/s'
set y2label 'p99 latency, ms'
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
set grid
set arrow from $third, graph 0 to $third, graph 1 nohead dt 2
set arrow from @{[2 * $third]}, graph 0 to @{[2 * $third]}, graph 1 nohead dt 2
plot '$file' using 1:2 with steps lw 2 title 'TPS', '' using 1:3 axes x1y2 with steps lw 2 title 'p99 (ms)'
GP
}
# Hit ratio around policy changes: only with decide_stats.
if (-s "$out/raw/churn-stats.txt") {
    my (@pts, @changes);
    my ($t0, $prev);
    open my $fh, '<', "$out/raw/churn-stats.txt" or die;
    while (<$fh>) {
        my ($t, $d, $h, $e) = split;
        next unless defined $h && $h =~ /^[\d.]+$/ && $d =~ /^[\d.]+$/;
        $t0 //= $t;
        if ($prev) {
            push @pts, [ $t - $t0, ($h - $prev->[2]) / ($d - $prev->[1]) ] if $d > $prev->[1];
            push @changes, $t - $t0 if defined $e && defined $prev->[3] && $e ne $prev->[3];
        }
        $prev = [ $t, $d, $h, $e ];
    }
    close $fh;
    if (@pts) {
        open my $dat, '>', "$out/churn_hit_ratio.dat" or die;
        printf $dat "%.2f\t%.4f\n", @$_ for @pts;
        close $dat;
        my $arrows = join '', map { sprintf "set arrow from %.2f, graph 0 to %.2f, graph 1 nohead dt 2 lc rgb '#d62728'\n", $_, $_ } @changes;
        gnuplot('hit_ratio_churn.png', <<"GP");
set title 'Decision-cache hit ratio during policy churn (zipf, 2 clients); dashed: a policy change committed'
set xlabel 'seconds'
set ylabel 'hits / decisions in each 0.2 s sample'
set yrange [0:1.05]
set grid
$arrows
plot '$out/churn_hit_ratio.dat' using 1:2 with steps lw 2 title 'answered from the cache (L1, L2, carried forward)'
GP
    }
}
if (@charts) {
    push @md, '### Charts';
    push @md, '';
    push @md, "![$_]($_)" for @charts;
    push @md, '';
}

# ---------------------------------------------------------------------------
# Regression check against the committed baseline

my $section = "scale=$meta{scale},mode=$meta{mode}";
my $exit = 0;
my @check_lines;
if ($check) {
    my $base = -f $check ? decode_json(do { local $/; open my $fh, '<', $check or die; <$fh> }) : {};
    my $expected = $base->{runs}{$section}{ratios};
    if (!$expected) {
        push @check_lines, "No baseline for $section in $check: ratios not checked (--update-baseline records one).";
    } else {
        my @fell;
        for my $k (sort keys %$expected) {
            my $now = $ratios{$k};
            next unless defined $now;    # workload not run this time
            my $was = $expected->{$k};
            my $change = $was > 0 ? $now / $was - 1 : 0;
            my @noisy = disturbed_runs($k);
            my $bad = $change < -$REGRESSION_TOLERANCE && !@noisy;
            push @fell, $k if $bad;
            push @check_lines, sprintf('%-44s %9.3f  baseline %9.3f  %+6.1f%%%s', $k, $now, $was,
                                       100 * $change,
                                       $bad ? '  REGRESSION'
                                       : @noisy ? "  not checked: @noisy disturbed by other work" : '');
        }
        if (@fell) {
            push @check_lines, sprintf('%d ratio(s) fell more than %d%% below %s [%s].',
                                       scalar @fell, 100 * $REGRESSION_TOLERANCE, $check, $section);
            $exit = 3;
            # for run.sh: the pairs of runs to measure again before it fails
            if (open my $sfh, '>', "$out/raw/suspects.tsv") {
                my %seen;
                for my $k (@fell) {
                    my @ids = @{ $ratio_runs{$k} // [] };
                    next unless @ids == 2 && !$seen{"@ids"}++;
                    print $sfh join("\t", @ids), "\n";
                }
                close $sfh;
            }
        } else {
            push @check_lines, sprintf('No ratio fell more than %d%% below %s [%s].',
                                       100 * $REGRESSION_TOLERANCE, $check, $section);
        }
    }
}
if ($update) {
    my $base = -f $update ? decode_json(do { local $/; open my $fh, '<', $update or die; <$fh> }) : {};
    $base->{comment} = 'Ratios from bench/run.sh on the reference machine, by scale and mode. '
        . 'bench/run.sh fails (exit 3) when one falls more than 10% below its value here. '
        . 'Rewrite a section with: sudo bash bench/run.sh [--scale S] [--quick] --update-baseline';
    $base->{runs}{$section} = {
        recorded => $meta{finished} // $meta{started},
        machine => "$meta{cpus} CPUs, $meta{cpu_model}",
        built_from => $meta{built_from},
        duration_s => $meta{duration} + 0,
        ratios => { map { $_ => 0 + sprintf('%.4g', $ratios{$_}) } grep { !disturbed_runs($_) } keys %ratios },
    };
    my @left_out = sort grep { disturbed_runs($_) } keys %ratios;
    push @check_lines, 'Left out of the baseline (disturbed by other work): ' . join(', ', @left_out) . '.' if @left_out;
    open my $fh, '>', $update or die "report.pl: $update: $!\n";
    print $fh $json->encode($base);
    close $fh;
    push @check_lines, "Recorded " . scalar(keys %{ $base->{runs}{$section}{ratios} }) . " ratios as the baseline for $section in $update.";
}
if (@check_lines) {
    push @md, '### Regression check';
    push @md, '';
    push @md, '```';
    push @md, @check_lines;
    push @md, '```';
    push @md, '';
}

# ---------------------------------------------------------------------------
# Outputs

my %numeric = map { $_ => 1 } qw(policies actors roles resources duration cpus memory_kb elapsed_s soak_duration);
my %meta_out = map { $_ => ($numeric{$_} && defined $meta{$_} && $meta{$_} =~ /^\d+$/ ? $meta{$_} + 0 : $meta{$_}) } keys %meta;
open my $jfh, '>', "$out/results.json" or die;
print $jfh $json->encode({
    meta => \%meta_out,
    runs => \@rows,
    scale_sweep => \@sweep,
    scale_sweep_sessions => \@sweep_sessions,
    ratios => \%ratios,
    informative_ratios => \%informative,
    targets => \@targets,
    charts => \@charts,
    regression_check => { section => $section, lines => \@check_lines, status => $exit ? 'regression' : 'ok' },
});
close $jfh;
open my $mdfh, '>', "$out/results.md" or die;
print $mdfh join("\n", @md), "\n";
close $mdfh;
print join("\n", @md), "\n";
exit $exit;
