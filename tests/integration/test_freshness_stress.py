"""A randomized stress run with an oracle (DESIGN.md section 4): writer sessions commit
grants, revokes and role changes while checker sessions check, in READ COMMITTED and in
REPEATABLE READ transactions opened long before. Every answer must be the one of a state
committed between the moment the check's statement began and the moment it returned;
anything else is a stale answer, and there must be none. Runs with whatever authz.cache
the test command set (it runs the suite with the cache on and with it off)."""
import random
import threading
import time
import uuid

USER = f"stress-{uuid.uuid4()}"
RESOURCES = [1, 2, 3]
SECONDS = 4


class Oracle:
    """The committed states, in commit order. A writer holds the lock across its COMMIT and
    the plain-SQL read of the tables that follows it, so a version read before a statement
    is committed, and one read after it covers every commit the statement could have seen.
    (The state is read back rather than inferred from the change: a revoke that ran while
    another writer's grant was uncommitted deletes nothing.)"""

    def __init__(self):
        self.lock = threading.Lock()
        self.history = [{"role": None, "type": None, **{r: None for r in RESOURCES}}]

    def record(self, conn):
        state = {"role": None, "type": None, **{r: None for r in RESOURCES}}
        state["role"] = conn.execute(
            "SELECT (SELECT role FROM authz.user_roles WHERE user_id = %s)", (USER,)
        ).fetchone()[0]
        for resource, effect in conn.execute(
            "SELECT resource_id, effect FROM authz.grants WHERE user_id = %s AND permission = 'document:read'",
            (USER,),
        ):
            state["type" if resource is None else int(resource)] = effect
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


def writer(conn, oracle, rng, stop):
    while not stop.is_set():
        target = rng.choice(RESOURCES + ["type", "role"])
        if target == "role":
            value = rng.choice(["viewer", None])
            conn.execute("SELECT authz_set_role(%s::text, %s)", (USER, value))
        else:
            value = rng.choice(["allow", "deny", None]) if target != "type" else rng.choice(["deny", None])
            resource = None if target == "type" else target
            if value is None:
                conn.execute("SELECT authz_revoke(%s::text, 'document:read', %s::int)", (USER, resource))
            else:
                conn.execute(
                    "SELECT authz_grant(%s::text, 'document:read', %s::int, NULL, %s)", (USER, resource, value)
                )
        with oracle.lock:
            conn.commit()
            oracle.record(conn)


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
                "SELECT authz_check(%s::text, 'document:read', %s)", (USER, resource)
            ).fetchone()[0]
            with oracle.lock:
                last = len(oracle.history) - 1
            results.append(answer in oracle.answers(first, last, resource))
        conn.execute("ROLLBACK")


def test_no_stale_answer_under_concurrent_changes(sessions):
    oracle = Oracle()
    stop = threading.Event()
    results = []
    threads = [
        threading.Thread(target=writer, args=(sessions(), oracle, random.Random(seed), stop))
        for seed in (1, 2)
    ] + [
        threading.Thread(
            target=checker, args=(sessions(autocommit=True), oracle, random.Random(seed), stop, rr, results)
        )
        for seed, rr in ((3, False), (4, True))
    ]
    for t in threads:
        t.start()
    time.sleep(SECONDS)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    stale = results.count(False)
    print(f"stress: {len(results)} checks, {len(oracle.history) - 1} commits, {stale} stale")
    assert len(oracle.history) > 20 and len(results) > 100, "the run did too little to mean anything"
    assert stale == 0
