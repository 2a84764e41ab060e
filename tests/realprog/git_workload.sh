#!/bin/sh
# git_workload.sh: what test_git.sh runs (once on glibc, once on heapkit).
# Builds a repository of 3000 generated files in DIR/repo with fixed names
# and dates (so every commit id is the same on every run), and prints the
# results of log, diff, blame, grep, gc, fsck, archive and clone. Output that
# depends on thread scheduling (pack layout) is left out.
# Usage: git_workload.sh DIR
set -e
dir=$1
export HOME="$dir/home" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL="$dir/home/gitconfig"
export GIT_AUTHOR_NAME="A U Thor" GIT_AUTHOR_EMAIL=author@example.com
export GIT_COMMITTER_NAME="C O Mitter" GIT_COMMITTER_EMAIL=committer@example.com
mkdir -p "$HOME"
: >"$GIT_CONFIG_GLOBAL"
at() { # at HOURS: sets the dates of the next commit
    GIT_AUTHOR_DATE="2020-01-01T$1:00:00Z"
    GIT_COMMITTER_DATE=$GIT_AUTHOR_DATE
    export GIT_AUTHOR_DATE GIT_COMMITTER_DATE
}
section() { echo "== $*"; }

cd "$dir"
git init -q -b main repo
cd repo
git config gc.auto 0
git config core.pager cat

# 40 directories of 75 files of 20-200 lines each.
i=0
while [ $i -lt 40 ]; do mkdir -p "d$i/sub"; i=$((i + 1)); done
awk 'BEGIN {
    for (d = 0; d < 40; d++)
        for (f = 0; f < 75; f++) {
            name = sprintf("d%d/%sf%d.txt", d, f % 3 ? "" : "sub/", f)
            n = 20 + (d * 75 + f) * 7 % 180
            for (l = 0; l < n; l++)
                printf "line %d of %s: %x %s\n", l, name, (l * 2654435761 + f * 40503 + d) % 4294967296, (l % 9 ? "" : "TODO") >name
            close(name)
        }
}'
at 01
git add -A
git commit -q -m "initial: 3000 files"

# Change every fifth file.
awk 'BEGIN {
    for (d = 0; d < 40; d++)
        for (f = 0; f < 75; f += 5) {
            name = sprintf("d%d/%sf%d.txt", d, f % 3 ? "" : "sub/", f)
            printf "appended to %s in commit 2\n", name >>name
            close(name)
        }
}'
at 02
git commit -q -a -m "append to every fifth file"

# Renames and removals.
i=0
while [ $i -lt 40 ]; do
    git mv "d$i/f1.txt" "d$i/renamed1.txt"
    git rm -q "d$i/f2.txt"
    i=$((i + 4))
done
at 03
git commit -q -m "rename and remove"

# A branch, work on both sides, a merge.
git checkout -q -b feature
awk 'BEGIN { for (d = 0; d < 40; d += 2) { name = sprintf("d%d/f7.txt", d); print "feature work" >>name; close(name) } }'
printf 'new file on the branch\n' >feature.txt
git add -A
at 04
git commit -q -m "feature work"
git checkout -q main
awk 'BEGIN { for (d = 1; d < 40; d += 2) { name = sprintf("d%d/f8.txt", d); print "main work" >>name; close(name) } }'
at 05
git commit -q -a -m "main work"
at 06
git merge -q --no-ff -m "merge feature" feature
git tag -a -m "version 1" v1

section rev-parse
git rev-parse HEAD HEAD^1 HEAD^2 v1 "HEAD:d0"
section log
git log --stat --format='%H %an %ad %s' --date=iso-strict
section log graph
git log --graph --oneline --all
section diff stat
git diff --stat HEAD~3 HEAD
section diff
git diff -M HEAD~4 HEAD | cksum
git diff -M --numstat HEAD~4 HEAD | wc -l
section ls-tree
git ls-tree -r -l HEAD | cksum
section blame
git blame -s d0/f5.txt | cksum
git blame --porcelain d2/f7.txt | grep -c '^[0-9a-f]\{40\} '
section grep
git grep -c TODO -- 'd1*' | head -20
git grep -n 'appended to' | wc -l
section shortlog
git shortlog -s -n --all
section status before gc
git status --porcelain | wc -l
section gc
git gc -q
git count-objects -v | grep -E '^(count|in-pack|packs|prune-packable|garbage):'
git fsck --full --no-progress --strict 2>&1
section repack
git repack -a -d -f -q --window=20 --depth=50 --threads=4
git count-objects -v | grep -E '^(count|in-pack|packs):'
git fsck --full --no-progress --strict 2>&1
section objects
git cat-file --batch-all-objects --batch-check='%(objectname) %(objecttype) %(objectsize)' | sort | cksum
git rev-list --all --objects | sort | cksum
section archive
git archive --format=tar HEAD | cksum
section clone
cd "$dir"
git clone -q --no-local repo clone
cd clone
git rev-parse HEAD
git log --format=%H | cksum
git fsck --no-progress --strict 2>&1
git diff --stat HEAD~2 HEAD | tail -1
section end
