"""A randomized stress run with an oracle (docs/guide.md, Freshness): writer sessions commit
grants, revokes, role changes and key rotations (revoke one key, create another) while
checker sessions check and validate keys, in READ COMMITTED and in REPEATABLE READ
transactions opened long before, in messages of several statements, and from 32 reader
connections at once; meanwhile other transactions that changed authorization data stay
open for long stretches, and one stays prepared. Every answer must be the one of a state
committed between the moment the check's statement began and the moment it returned;
anything else is a stale answer, and there must be none. With the cache on, the cache must
also have answered a good share of the checks (an unused cache is never stale)."""
import random
import threading

from conftest import connect, run_for, stats, unique

RESOURCES = [1, 2, 3]
SECONDS = 4
READERS = 32


class Oracle:
    """The committed states, in commit order. A writer holds the lock across its COMMIT and
    the plain-SQL read of the tables that follows it, so a version read before a statement
    is committed, and one read after it covers every commit the statement could have seen.
    (The state is read back rather than inferred from the change: a revoke that ran while
    another writer's grant was uncommitted deletes nothing.)"""

    def __init__(self):
        self.user = unique("stress")  # a user of this run's own
        self.lock = threading.Lock()
        self.history = [{"role": None, "type": None, **{r: None for r in RESOURCES}, "keys": {}}]
        self.tokens = {}  # token -> key id, for keys whose creation has committed

    def record(self, conn):
        state = {"role": None, "type": None, **{r: None for r in RESOURCES}}
        state["role"] = conn.execute(
            "SELECT (SELECT role FROM authz.user_roles WHERE user_id = %s)", (self.user,)
        ).fetchone()[0]
        for resource, effect in conn.execute(
            "SELECT resource_id, effect FROM authz.grants WHERE user_id = %s AND permission = 'document:read'",
            (self.user,),
        ):
            state["type" if resource is None else int(resource)] = effect
        state["keys"] = dict(conn.execute(
            "SELECT id, CASE WHEN revoked_at IS NULL THEN 'valid' ELSE 'revoked' END FROM authz.api_keys"
            " WHERE user_id = %s", (self.user,)).fetchall())
        conn.rollback()
        self.history.append(state)

    @staticmethod
    def allowed(state, resource):
        for level in (state[resource], state["type"]):
            if level is not None:
                return level == "allow"
        return state["role"] == "viewer"

    def answers(self, first, last, resource):
        return {self.allowed(s, resource) for s in self.history[first:last + 1]}

    def key_statuses(self, first, last, key_id):
        return {s["keys"].get(key_id, "unknown") for s in self.history[first:last + 1]}


def writer(conn, oracle, rng, stop):
    while not stop.is_set():
        target = rng.choice(RESOURCES + ["type", "role", "key"])
        created = None
        if target == "key":
            live = [key_id for key_id, status in oracle.history[-1]["keys"].items() if status == "valid"]
            if live and rng.random() < 0.7:
                conn.execute("SELECT api_key_revoke(%s)", (rng.choice(live),))
            created = conn.execute(
                "SELECT token, key_id FROM api_key_create(%s::text, 'stress', ARRAY['documents:read'])", (oracle.user,)
            ).fetchone()
        elif target == "role":
            value = rng.choice(["viewer", None])
            conn.execute("SELECT authz_set_role(%s::text, %s)", (oracle.user, value))
        else:
            value = rng.choice(["allow", "deny", None]) if target != "type" else rng.choice(["deny", None])
            resource = None if target == "type" else target
            if value is None:
                conn.execute("SELECT authz_revoke(%s::text, 'document:read', %s::int)", (oracle.user, resource))
            else:
                conn.execute(
                    "SELECT authz_grant(%s::text, 'document:read', %s::int, NULL, %s)", (oracle.user, resource, value)
                )
        with oracle.lock:
            conn.commit()
            oracle.record(conn)
            if created:
                oracle.tokens[created[0]] = created[1]


def checker(conn, oracle, rng, stop, repeatable_read, results):
    while not stop.is_set():
        # The connection is in autocommit mode, so BEGIN here really opens the transaction.
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ" if repeatable_read else "BEGIN")
        conn.execute("SELECT count(*) FROM pg_class")  # a REPEATABLE READ snapshot is taken here
        for _ in range(20):
            resource = rng.choice(RESOURCES)
            with oracle.lock:
                first = len(oracle.history) - 1
            answer = conn.execute(
                "SELECT authz_check(%s::text, 'document:read', %s)", (oracle.user, resource)
            ).fetchone()[0]
            with oracle.lock:
                last = len(oracle.history) - 1
            results.append(("check", answer in oracle.answers(first, last, resource)))
            with oracle.lock:
                tokens = list(oracle.tokens.items())
                first = len(oracle.history) - 1
            if tokens:
                token, key_id = rng.choice(tokens)
                status = conn.execute("SELECT status FROM api_key_validate(%s)", (token,)).fetchone()[0]
                with oracle.lock:
                    last = len(oracle.history) - 1
                results.append(("key", status in oracle.key_statuses(first, last, key_id)))
        conn.execute("ROLLBACK")


def message_checker(conn, oracle, rng, stop, results):
    """Three checks in one simple-Query message, with a pause between them."""
    while not stop.is_set():
        resources = [rng.choice(RESOURCES) for _ in range(3)]
        statements = "; SELECT pg_sleep(0.01); ".join(
            f"SELECT authz_check('{oracle.user}'::text, 'document:read', {r})" for r in resources)
        with oracle.lock:
            first = len(oracle.history) - 1
        cursor = conn.execute(statements)
        answers = []
        while True:
            row = cursor.fetchone()
            if isinstance(row[0], bool):
                answers.append(row[0])
            if not cursor.nextset():
                break
        with oracle.lock:
            last = len(oracle.history) - 1
        results.extend(("check", a in oracle.answers(first, last, r)) for a, r in zip(answers, resources))


def reader(conn, oracle, rng, stop, results):
    while not stop.is_set():
        resource = rng.choice(RESOURCES)
        with oracle.lock:
            first = len(oracle.history) - 1
        answer = conn.execute("SELECT authz_check(%s::text, 'document:read', %s)", (oracle.user, resource)).fetchone()[0]
        with oracle.lock:
            last = len(oracle.history) - 1
        results.append(("check", answer in oracle.answers(first, last, resource)))


def long_writer(conn, rng, stop):
    """Keeps a transaction that changed authorization data (of another user) open."""
    while not stop.is_set():
        conn.execute("SELECT authz_grant(%s::text, 'document:read', 1)", (unique("bystander"),))
        stop.wait(rng.uniform(0.3, 1.0))
        conn.rollback() if rng.random() < 0.5 else conn.commit()


def test_no_stale_answer_under_concurrent_changes(sessions, cache):
    oracle = Oracle()
    stop = threading.Event()
    results = []
    gid = unique("stress")
    prepared = sessions()
    prepared.execute("SELECT authz_grant(%s::text, 'document:read', 1)", (unique("bystander"),))
    prepared.execute(f"PREPARE TRANSACTION '{gid}'")
    checkers = [sessions(autocommit=True) for _ in range(3 + READERS)]
    threads = [
        threading.Thread(target=writer, args=(sessions(), oracle, random.Random(seed), stop))
        for seed in (1, 2)
    ] + [
        threading.Thread(target=long_writer, args=(sessions(), random.Random(seed), stop)) for seed in (5, 6)
    ] + [
        threading.Thread(target=checker, args=(checkers[0], oracle, random.Random(3), stop, False, results)),
        threading.Thread(target=checker, args=(checkers[1], oracle, random.Random(4), stop, True, results)),
        threading.Thread(target=message_checker, args=(checkers[2], oracle, random.Random(7), stop, results)),
    ] + [
        threading.Thread(target=reader, args=(conn, oracle, random.Random(10 + i), stop, results))
        for i, conn in enumerate(checkers[3:])
    ]
    try:
        run_for(SECONDS, threads, stop, join_timeout=30)
    finally:
        with connect(autocommit=True) as admin:
            admin.execute(f"ROLLBACK PREPARED '{gid}'")
    counters = [stats(conn) for conn in checkers]
    hits = sum(c["cache_hits"] for c in counters)
    lookups = hits + sum(c["cache_misses"] + c["cache_bypasses"] for c in counters)
    checks = [ok for kind, ok in results if kind == "check"]
    validations = [ok for kind, ok in results if kind == "key"]
    stale = checks.count(False) + validations.count(False)
    print(f"stress (cache {cache}): {len(checks)} checks, {len(validations)} key validations, "
          f"{len(oracle.history) - 1} commits, {len(oracle.tokens)} keys, {stale} stale; "
          f"cache hits {hits} of {lookups} lookups")
    assert len(oracle.history) > 20 and len(checks) > 1000 and len(validations) > 50, "the run did too little"
    assert stale == 0
    if cache == "on":
        assert hits > lookups // 5, "the cache was hardly used"


def test_readers_never_make_each_other_bypass_the_cache(sessions):
    """No writes at all: 32 sessions checking at once must all be answered from the cache
    (reader against reader, nothing may conflict)."""
    user = unique("readers")
    sessions(autocommit=True).execute("SELECT authz_grant(%s::text, 'document:read', 1)", (user,))
    conns = [sessions(autocommit=True, options="-c authz.cache=on") for _ in range(READERS)]
    for conn in conns:  # warm: a first sighting, then a whole load
        for _ in range(2):
            conn.execute("SELECT authz_check(%s::text, 'document:read', 1)", (user,))
    before = [stats(conn) for conn in conns]

    def run(conn):
        for _ in range(200):
            assert conn.execute("SELECT authz_check(%s::text, 'document:read', 1)", (user,)).fetchone()[0]

    threads = [threading.Thread(target=run, args=(conn,)) for conn in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = [stats(conn) for conn in conns]
    bypasses = sum(a["cache_bypasses"] - b["cache_bypasses"] for a, b in zip(after, before))
    hits = sum(a["cache_hits"] - b["cache_hits"] for a, b in zip(after, before))
    print(f"readers: {READERS} sessions, {hits} hits, {bypasses} bypasses")
    assert bypasses == 0 and hits == READERS * 200
