# gen_c.awk: writes a sizable C program for test_gcc.sh.
# Usage: awk -v n=FUNCTIONS -f gen_c.awk > big.c
# Each function mixes loops, a switch, arithmetic on a struct array and
# string formatting, so that the compiler's optimisers have real work; main
# calls them all and prints a checksum per hundred functions.
BEGIN {
    if (n == "") n = 1000
    print "#include <stdio.h>"
    print "#include <string.h>"
    print "#include <stdint.h>"
    print "struct item { uint32_t a, b; double w; char tag[16]; };"
    print "static struct item items[256];"
    for (i = 0; i < n; i++) {
        printf "static uint64_t f%d(uint64_t x) {\n", i
        printf "    uint64_t acc = %du;\n", (i * 2654435761) % 1000003
        printf "    char buf[64];\n"
        printf "    for (int k = 0; k < %d; k++) {\n", 3 + i % 17
        printf "        struct item *it = &items[(x + k * %d) & 255];\n", 1 + i % 13
        printf "        switch ((x ^ k) %% %d) {\n", 4 + i % 5
        for (c = 0; c < 4 + i % 5; c++)
            printf "        case %d: acc = acc * %d + it->a + (uint64_t)(it->w * %d.0); it->b ^= (uint32_t)acc; break;\n", c, 3 + (i + c) % 29, 1 + c
        printf "        default: acc += it->b; break;\n"
        printf "        }\n"
        printf "        if ((acc & %d) == 0) { snprintf(buf, sizeof buf, \"%%llu-%d\", (unsigned long long)acc); acc += strlen(buf); }\n", 7 + i % 8, i
        printf "        x = (x >> %d) | (x << %d);\n", 1 + i % 7, 63 - i % 7
        printf "    }\n"
        if (i > 0) printf "    return acc ^ f%d(x & 0xff) * (x & 1);\n", int(i / 2) - (i % 2 == 0 && i > 0 ? 1 : 0) < 0 ? 0 : int((i - 1) / 2)
        else printf "    return acc;\n"
        printf "}\n"
    }
    print "int main(void) {"
    print "    for (int i = 0; i < 256; i++) {"
    print "        items[i].a = (uint32_t)(i * 2654435761u); items[i].b = (uint32_t)i * 40503u;"
    print "        items[i].w = i * 0.25; snprintf(items[i].tag, sizeof items[i].tag, \"t%d\", i);"
    print "    }"
    print "    uint64_t sum = 0;"
    for (i = 0; i < n; i++) {
        printf "    sum = sum * 31 + f%d(%du);\n", i, i * 7 + 1
        if (i % 100 == 99) printf "    printf(\"%d %%llu\\n\", (unsigned long long)sum);\n", i
    }
    print "    printf(\"total %llu\\n\", (unsigned long long)sum);"
    print "    return 0;"
    print "}"
}
