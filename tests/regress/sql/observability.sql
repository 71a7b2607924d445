-- Observability: authz_stats() counts this backend's checks and key validations, and
-- authz.log_denials logs denials of authz_require and authz_authenticate at the chosen
-- level (NOTICE here, so that this file shows the lines), never with a token.
CREATE EXTENSION authz_ext;
SELECT authz_set_role('o1', 'viewer');
SELECT authz_grant('o1', 'document:read', 2, NULL, 'deny');
SELECT token AS o1_token FROM api_key_create('o1', 'k', ARRAY['documents:read']) \gset

CREATE TEMP TABLE stats_before AS SELECT counter, value FROM authz_stats();
SELECT authz_check('o1', 'document:read', 1) AS read_1,          -- allowed (role)
       authz_check('o1', 'document:read', 2) AS read_2,          -- denied (override)
       authz_check('o1', 'document:delete', 1) AS delete_1,      -- denied (default)
       authz_check(NULL::text, 'document:read', 1) AS null_user; -- not a check: NULL
SELECT authz_check('o1', 'document:fly', 1);                     -- an error: not counted
SELECT status FROM api_key_validate(:'o1_token');
SELECT status FROM api_key_validate('azk_not_even_close');
SELECT status FROM api_key_validate('azk_' || repeat('A', 38));
-- What changed. (The cache counters depend on authz.cache; their sum does not: one per
-- call that reached a lookup, the failed one included.)
SELECT s.counter, s.value - b.value AS delta
FROM authz_stats() s JOIN stats_before b USING (counter)
WHERE s.counter NOT LIKE 'cache%' AND s.counter NOT LIKE '%bytes' AND s.counter <> 'invalidations'
ORDER BY s.counter;
SELECT sum(s.value - b.value) AS cache_lookups
FROM authz_stats() s JOIN stats_before b USING (counter)
WHERE s.counter IN ('cache_hits', 'cache_misses', 'cache_bypasses');
-- Every counter is described.
SELECT count(*) AS counters, bool_and(description <> '') AS described FROM authz_stats();

-- Denial log lines, at NOTICE (a superuser setting).
SET authz.log_denials = notice;
SELECT authz_require('o1', 'document:read', 2);
BEGIN;
SELECT authz_authenticate('azk_' || repeat('A', 38));
ROLLBACK;
RESET authz.log_denials;
SELECT authz_require('o1', 'document:read', 2);                  -- off: no line
SHOW authz.log_denials;
-- Any role may read its own backend's counters; only a superuser may set the log level.
BEGIN;
CREATE ROLE authz_obs_plain;
SET LOCAL ROLE authz_obs_plain;
SELECT count(*) AS counters FROM authz_stats();
SET authz.log_denials = log;
ROLLBACK;

-- Internal queries run with jit off (their plans are cached, JIT code is not); the
-- caller's setting is left as it was.
BEGIN;
SET LOCAL authz.cache = off;                                     -- every check a query
SET LOCAL jit = on;
SELECT authz_check('o1', 'document:read', 1) AS read_1;
SHOW jit;
COMMIT;

DROP TABLE stats_before;
DROP EXTENSION authz_ext;
