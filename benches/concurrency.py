"""Part of benches/checks.sh: CLIENTS processes, each one session, run STATEMENTS single
random checks each, with no writes anywhere; prints "statements bypasses" summed over the
sessions (each reads its own authz_stats() before and after).
Usage: concurrency.py HOST PORT DBNAME CLIENTS STATEMENTS"""
import multiprocessing
import random
import sys

import psycopg

HOST, PORT, DBNAME = sys.argv[1], sys.argv[2], sys.argv[3]
CLIENTS, STATEMENTS = int(sys.argv[4]), int(sys.argv[5])


def bypasses(conn):
    return conn.execute("SELECT value FROM authz_stats() WHERE counter = 'cache_bypasses'").fetchone()[0]


def client(seed, out):
    rng = random.Random(seed)
    with psycopg.connect(host=HOST, port=PORT, dbname=DBNAME, user="postgres", autocommit=True,
                         options="-c authz.cache=on") as conn:
        before = bypasses(conn)
        for _ in range(STATEMENTS):
            conn.execute("SELECT authz_check(%s::bigint, 'document:read', %s::bigint)",
                         (rng.randint(1, 10000), rng.randint(1, 1000000)), prepare=True)
        out.put(bypasses(conn) - before)


if __name__ == "__main__":
    results = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=client, args=(seed, results)) for seed in range(CLIENTS)]
    for w in workers:
        w.start()
    total = sum(results.get() for _ in workers)
    for w in workers:
        w.join()
    print(CLIENTS * STATEMENTS, total)
