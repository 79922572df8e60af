# A fresh install (sql/extension/decide--0.7.0.sql, one script) and an
# install at 0.1.0 updated through every upgrade script have the same
# schema: the same member objects with the same columns in the same order,
# defaults, constraints, indexes, triggers, function bodies, comments,
# grants and configuration tables.  pg_dump --binary-upgrade lists the
# extension's member objects (a plain dump shows only CREATE EXTENSION),
# and the two dumps must be equal up to what necessarily differs between
# two databases.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('versions');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'decide'");
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('postgres', 'CREATE DATABASE upgraded');
$node->safe_psql('fresh', 'CREATE EXTENSION decide');
$node->safe_psql('upgraded', q{
    CREATE EXTENSION decide VERSION '0.1.0';
    ALTER EXTENSION decide UPDATE;
});
# Each database's worker makes the log's partitions of today and the next
# two days: the dumps are taken once both have them.
foreach my $db ('fresh', 'upgraded')
{
	ok($node->poll_query_until($db,
		q{SELECT count(*) >= 3 FROM pg_inherits WHERE inhparent = 'decide.decision_chunks'::regclass}),
	   "$db: its worker made the log's partitions");
}
is($node->safe_psql('upgraded', q{SELECT extversion FROM pg_extension WHERE extname = 'decide'}),
   $node->safe_psql('fresh', q{SELECT extversion FROM pg_extension WHERE extname = 'decide'}),
   'the updated database is at the default version');

sub schema_of
{
	my ($db) = @_;
	my ($dump, $err) = run_command(['pg_dump', '--schema-only', '--binary-upgrade',
									'--no-sync', '-d', $node->connstr($db)]);
	is($err, '', "pg_dump of $db reports nothing");
	my $raw = $node->basedir . "/$db.sql";
	open my $fh, '>', $raw or die "$raw: $!";
	print $fh $dump;
	close $fh;

	# The extension's configuration tables, as OIDs in the order
	# pg_extension_config_dump() registered them: named instead, since the
	# same table has a different OID in each database.
	my @config = split /\n/, $node->safe_psql($db, q{
		SELECT c::regclass FROM pg_extension, unnest(extconfig) WITH ORDINALITY AS u(c, n)
		 WHERE extname = 'decide' ORDER BY n});
	my $config = join(',', @config);
	my $n = ($dump =~ s/(binary_upgrade_create_empty_extension\('decide', '[^']*', \w+, '[^']*', )'\{[0-9,]*\}'/$1'{$config}'/g);
	is($n, 1, "$db: the extension's configuration tables, named");

	# Each object's OID (and a relation's relfilenode), kept by pg_upgrade
	# through binary_upgrade_set_next_*(): drawn from the cluster-wide OID
	# counter, so they differ between the databases.
	$dump =~ s/(binary_upgrade_set_next_\w+\()'\d+'::pg_catalog\.oid\)/$1'OID'::pg_catalog.oid)/g;

	# The attribute versions this server keeps for each column, kept by
	# binary_upgrade_set_next_attribute_versions(): the WAL position at which
	# the column was created, different in every database.  The updated
	# database also shows its history there (a column that an update added
	# has a later position than its table's first columns), which a fresh
	# install cannot reproduce: each position is replaced, their number (one
	# per column) is kept.
	$dump =~ s{(binary_upgrade_set_next_attribute_versions\(')\{([0-9A-F/,]*)\}('::pg_catalog\.pg_lsn\[\]\))}
			  {$1 . '{' . join(',', map { m{^[0-9A-F]+/[0-9A-F]+$} ? 'LSN' : $_ } split(/,/, $2)) . '}' . $3}ge;

	# pg_upgrade carries each table's (and its TOAST table's) freeze horizon
	# over: the transaction and multixact counters when the table was
	# created or last rewritten, so they differ between the databases.  A
	# TOAST table is named by its OID (see above).
	$dump =~ s/^SET relfrozenxid = '\d+', relminmxid = '\d+'$/SET relfrozenxid = 'XID', relminmxid = 'MXID'/mg;
	$dump =~ s/(-- For binary upgrade, set toast's relfrozenxid and relminmxid\n[^\n]*\n[^\n]*\n)WHERE oid = '\d+';/$1WHERE oid = 'OID';/g;

	# \restrict and \unrestrict (pg_dump 15.14 and later) carry a key drawn
	# at random for every dump.
	$dump =~ s/^(\\(?:un)?restrict) \S+$/$1 KEY/mg;

	# Nothing else is filtered.  The database's name appears only with
	# --create, and the dump's start and end times only with --verbose:
	# neither is used.  A dropped column would show as
	# "........pg.dropped.N........" in the updated database only; there is
	# none today, so none is filtered.
	return $dump;
}

my $fresh = schema_of('fresh');
my $upgraded = schema_of('upgraded');
like($fresh, qr/ALTER EXTENSION decide ADD TABLE decide\.policies;/,
	 'the dump lists the member objects');

if ($fresh eq $upgraded)
{
	pass('a fresh 0.7.0 install and 0.1.0 updated to 0.7.0 have the same schema');
}
else
{
	my $dir = $node->basedir;
	foreach (['fresh', $fresh], ['upgraded', $upgraded])
	{
		open my $fh, '>', "$dir/$_->[0].normalised.sql" or die "$dir/$_->[0].normalised.sql: $!";
		print $fh $_->[1];
		close $fh;
	}
	my ($diff) = run_command(['diff', '-u', "$dir/fresh.normalised.sql", "$dir/upgraded.normalised.sql"]);
	diag($diff);
	fail('a fresh 0.7.0 install and 0.1.0 updated to 0.7.0 have the same schema');
}

$node->stop;
done_testing();
