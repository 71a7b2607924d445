-- The baseline of benches/relationships.sh: the benchmark's model (document viewer =
-- viewer from parent; project viewer = [team#member]; team member = [user]) evaluated the
-- obvious way in SQL, over the same table: a recursive CTE expanding the document's subjects
-- (its parents' viewers, then every userset's subjects) until it finds the user.
CREATE FUNCTION bench_cte_check(p_subject text, p_object text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE subjects(subject_type, subject_id, subject_relation) AS (
        SELECT 'project' COLLATE "C", t.subject_id, 'viewer' COLLATE "C"
        FROM authz.relation_tuples t
        WHERE t.object_type = 'document' AND t.object_id = split_part(p_object, ':', 2) AND t.relation = 'parent'
      UNION
        SELECT t.subject_type, t.subject_id, t.subject_relation
        FROM subjects s
        JOIN authz.relation_tuples t
          ON t.object_type = s.subject_type AND t.object_id = s.subject_id AND t.relation = s.subject_relation
    )
    SELECT EXISTS (SELECT FROM subjects
                   WHERE subject_type = 'user' AND subject_id = split_part(p_subject, ':', 2) AND subject_relation = '');
$$;
