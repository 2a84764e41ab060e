# gen_sql.awk: writes the SQL script of test_sqlite.sh.
# Usage: awk -v n=ROWS -f gen_sql.awk > work.sql
# n single-row INSERTs into one table and n/2 into another (each statement
# parsed and prepared on its own), a 3n-row insert from a recursive CTE,
# indexes, then aggregate, join, window, LIKE, JSON, update, delete and
# point queries, VACUUM and an integrity check. All results are
# deterministic.
BEGIN {
    if (n == "") n = 100000
    print "PRAGMA cache_size = -65536;"
    print "PRAGMA journal_mode = DELETE;"
    print "CREATE TABLE people(id INTEGER PRIMARY KEY, name TEXT, city TEXT, age INT, score REAL, note TEXT);"
    print "CREATE TABLE orders(id INTEGER PRIMARY KEY, person INT, amount INT, item TEXT);"
    print "BEGIN;"
    for (i = 1; i <= n; i++) {
        k = (i * 2654435761) % 4294967296
        printf "INSERT INTO people VALUES(%d, 'name%d', 'city%d', %d, %d.%02d, '%s');\n", \
            i, k % 100000, k % 97, 18 + k % 70, k % 1000, k % 100, substr("abcdefghijklmnopqrstuvwxyz0123456789", 1 + k % 20, 5 + k % 17)
    }
    print "COMMIT;"
    print "BEGIN;"
    for (i = 1; i <= n / 2; i++) {
        k = (i * 40503 + 7) % 65536
        printf "INSERT INTO orders(person, amount, item) VALUES(%d, %d, 'item-%d');\n", 1 + (i * 7919) % n, k % 5000, k % 300
    }
    print "COMMIT;"
    print "CREATE TABLE series(x INTEGER, y TEXT);"
    printf "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < %d) INSERT INTO series SELECT x, printf('%%08x-%%s', x * 2654435761 %% 4294967296, hex(x)) FROM c;\n", 3 * n
    print "CREATE INDEX people_city ON people(city, age);"
    print "CREATE INDEX orders_person ON orders(person);"
    print "CREATE INDEX series_y ON series(y);"
    print "ANALYZE;"
    print ".print == aggregates"
    print "SELECT count(*), sum(age), round(avg(score), 4), min(name), max(name) FROM people;"
    print "SELECT count(*), sum(x), min(y), max(y) FROM series;"
    print ".print == group by"
    print "SELECT city, count(*), sum(age), round(avg(score), 3) FROM people GROUP BY city ORDER BY city LIMIT 30;"
    print ".print == join"
    print "SELECT p.city, count(o.id), sum(o.amount) FROM people p JOIN orders o ON o.person = p.id GROUP BY p.city HAVING count(o.id) > 10 ORDER BY sum(o.amount) DESC, p.city LIMIT 25;"
    print ".print == window"
    print "SELECT city, name, age, rank FROM (SELECT city, name, age, row_number() OVER (PARTITION BY city ORDER BY age DESC, id) AS rank FROM people) WHERE rank <= 2 ORDER BY city, rank LIMIT 40;"
    print ".print == like and text"
    print "SELECT count(*), sum(length(note)) FROM people WHERE note LIKE '%fgh%';"
    print "SELECT length(group_concat(y, ',')) FROM (SELECT y FROM series ORDER BY y LIMIT 50000);"
    print "SELECT count(*) FROM series WHERE y GLOB '0000*';"
    print ".print == json"
    print "SELECT length(json_group_array(json_object('id', id, 'name', name, 'city', city))) FROM people WHERE id % 10 = 0;"
    print ".print == update and delete"
    print "UPDATE people SET note = note || '-updated-' || id WHERE id % 3 = 0;"
    print "SELECT changes();"
    print "DELETE FROM orders WHERE amount < 500;"
    print "SELECT changes();"
    print "DELETE FROM series WHERE x % 2 = 0;"
    print "SELECT changes();"
    print "SELECT count(*), sum(length(note)) FROM people;"
    print ".print == point queries"
    for (i = 1; i <= 2000; i++)
        printf "SELECT id, name, age, note FROM people WHERE id = %d;\n", 1 + (i * 104729) % n
    for (i = 1; i <= 500; i++)
        printf "SELECT count(*), coalesce(sum(amount), 0) FROM orders WHERE person = %d;\n", 1 + (i * 1299709) % n
    print ".print == vacuum"
    print "VACUUM;"
    print "PRAGMA integrity_check;"
    print "SELECT count(*) FROM people; SELECT count(*) FROM orders; SELECT count(*) FROM series;"
    print ".print == end"
}
