# perl_workload.pl: a Perl workload for test_perl.sh. Hashes and arrays of
# a million entries, sorting, regular expressions over a large text,
# strings that grow (realloc), nested structures dropped and rebuilt, and
# four interpreter threads (ithreads copy the whole interpreter, then free
# it at join). Prints only deterministic results.
# Usage: perl perl_workload.pl SCALE
use strict;
use warnings;
use threads;
use Digest::MD5 qw(md5_hex);

my $scale = $ARGV[0] || 1;
my $n = int(1_000_000 * $scale);

# A big hash, sorted, half deleted, rebuilt.
my %h;
for my $i (0 .. $n - 1) {
    $h{"key" . (($i * 7919) % 1_000_003)} = [$i, "v$i", $i * 2];
}
my @keys = sort keys %h;
print "hash: ", scalar(@keys), " keys, first $keys[0], last $keys[-1]\n";
my $sum = 0;
for my $k (@keys) { $sum += $h{$k}[0] if $k =~ /7$/; }
print "sum of keys ending in 7: $sum\n";
delete $h{$_} for grep { /[13579]$/ } @keys;
print "after delete: ", scalar(keys %h), "\n";
undef @keys;
for my $i (0 .. $n / 2) { $h{"new$i"} = { id => $i, name => "n" x ($i % 50) }; }
print "rebuilt: ", scalar(keys %h), "\n";
%h = ();

# A large text: growing string, regexes, split and join.
my $text = "";
for my $i (0 .. $n / 10) { $text .= sprintf("%06d the quick brown fox %x jumps\n", $i, $i * 31); }
print "text: ", length($text), " bytes, md5 ", md5_hex($text), "\n";
my $count = () = $text =~ /fox [0-9a-f]*7 /g;
print "matches: $count\n";
(my $t2 = $text) =~ s/(\d+) the/the $1/g;
print "substituted md5 ", md5_hex($t2), "\n";
my @lines = split /\n/, $text;
my @sorted = sort { length($a) <=> length($b) or $b cmp $a } @lines;
print "lines: ", scalar(@lines), " shortest '$sorted[0]'\n";
print "joined md5 ", md5_hex(join("|", reverse @sorted)), "\n";
undef $text; undef $t2; undef @lines; undef @sorted;

# Nested structures.
my @tree;
for my $i (0 .. $n / 20) {
    push @tree, { id => $i, kids => [map { [$_, "x" x ($_ % 30)] } 0 .. $i % 10] };
}
my $kids = 0;
$kids += scalar(@{$_->{kids}}) for @tree;
print "tree: ", scalar(@tree), " nodes, $kids kids\n";
@tree = ();

# Threads: each builds and drops its own data; the results come back.
my @thr = map {
    my $id = $_;
    threads->create(sub {
        my %local;
        $local{"t$id-$_"} = [($_) x 3] for 0 .. $n / 10;
        my $s = 0;
        $s += $local{$_}[0] for keys %local;
        my $str = join(",", map { $_ * $id } 0 .. $n / 20);
        return "$id " . scalar(keys %local) . " $s " . md5_hex($str);
    });
} 1 .. 4;
print "thread $_\n" for sort map { $_->join } @thr;
print "done\n";
