# DecideRedis — a throwaway redis-server for the TAP tests that need one:
# loopback only, a free port, a temporary directory, no persistence;
# stopped by its PID.
#
#   use FindBin;
#   use lib $FindBin::RealBin;
#   use DecideRedis;
#   my $redis = DecideRedis->new;    # not started yet
#   $redis->start(@extra_server_args);
#   END { $redis->stop if $redis; }
#   $redis->cli('SADD', 'k', 'v');   # redis-cli's output, chomped
#   $redis->port, $redis->dir, $redis->pid
package DecideRedis;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(usleep);

sub new
{
    my ($class) = @_;
    return bless {
        dir  => PostgreSQL::Test::Utils::tempdir,
        port => PostgreSQL::Test::Cluster::get_free_port(),
        pid  => undef,
    }, $class;
}

sub port { return $_[0]->{port}; }
sub dir  { return $_[0]->{dir}; }
sub pid  { return $_[0]->{pid}; }

# Starts the server and waits until it answers; dies if it does not.
sub start
{
    my ($self, @extra) = @_;
    my ($dir, $port) = ($self->{dir}, $self->{port});

    system('redis-server', '--port', $port, '--bind', '127.0.0.1', '--save', '',
           '--appendonly', 'no', '--daemonize', 'yes', '--dir', $dir,
           '--pidfile', "$dir/redis.pid", '--logfile', "$dir/redis.log", @extra) == 0
      or die "could not start redis-server";
    foreach (1 .. 100)
    {
        if (-s "$dir/redis.pid" && system("redis-cli -p $port ping >/dev/null 2>&1") == 0)
        {
            my $pid = slurp_file("$dir/redis.pid");
            chomp $pid;
            $self->{pid} = $pid;
            return;
        }
        usleep(50_000);
    }
    die "redis-server did not come up";
}

# Kills it (resuming it first, should a test have paused it) and waits.
sub stop
{
    my ($self) = @_;
    my $pid = $self->{pid};

    return unless $pid;
    kill 'CONT', $pid;
    kill 'KILL', $pid;
    foreach (1 .. 100) { last unless kill 0, $pid; usleep(20_000); }
    unlink "$self->{dir}/redis.pid";
    $self->{pid} = undef;
}

# redis-cli with these arguments (passed through the shell), its output chomped.
sub cli
{
    my ($self, @args) = @_;
    my $out = `redis-cli -p $self->{port} @args 2>&1`;
    chomp $out;
    return $out;
}

1;
