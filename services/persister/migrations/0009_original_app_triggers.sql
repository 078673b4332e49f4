-- Keep the original's columns and ours equal, in the statement that writes either (BEFORE row
-- triggers): our services write theirs, the original app (or anything written for it) writes its
-- own, and each reads what it expects. The persister's completing UPDATE sets plan_id and status,
-- so workout_plan_id changes in that same statement, in its one transaction.

CREATE OR REPLACE FUNCTION workout_plan_requests_same_as_original() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- Our rows: the request id the gateway returns is the row's id, under both names.
        NEW.request_id := coalesce(NEW.request_id, NEW.id);
        NEW.plan_id := coalesce(NEW.plan_id, NEW.workout_plan_id);
        NEW.workout_plan_id := NEW.plan_id;
        NEW.error := coalesce(NEW.error, NEW.error_message);
        NEW.error_message := NEW.error;
    ELSE
        IF NEW.plan_id IS DISTINCT FROM OLD.plan_id THEN
            NEW.workout_plan_id := NEW.plan_id;
        ELSE
            NEW.plan_id := NEW.workout_plan_id;
        END IF;
        IF NEW.error IS DISTINCT FROM OLD.error THEN
            NEW.error_message := NEW.error;
        ELSE
            NEW.error := NEW.error_message;
        END IF;
    END IF;
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS same_as_original ON workout_plan_requests;
CREATE TRIGGER same_as_original BEFORE INSERT OR UPDATE ON workout_plan_requests
    FOR EACH ROW EXECUTE FUNCTION workout_plan_requests_same_as_original();

-- Entries: the original's week_number, day (a weekday), day_name, date (the plan's start date,
-- then the entry's week and weekday) and exercise_id from ours, or ours from the original's.
CREATE OR REPLACE FUNCTION workout_entries_same_as_original() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
DECLARE
    days CONSTANT text[] := ARRAY['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];
BEGIN
    IF TG_OP = 'UPDATE' THEN
        -- Whichever side changed wins; the other follows.
        IF NEW.workout_plan_id IS DISTINCT FROM OLD.workout_plan_id THEN NEW.plan_id := NULL; END IF;
        IF NEW.plan_id IS DISTINCT FROM OLD.plan_id THEN NEW.workout_plan_id := NULL; END IF;
        IF NEW.week_number IS DISTINCT FROM OLD.week_number THEN NEW.week := NULL; END IF;
        IF NEW.week IS DISTINCT FROM OLD.week THEN NEW.week_number := NULL; END IF;
        IF NEW.day IS DISTINCT FROM OLD.day THEN NEW.day_of_week := NULL; END IF;
        IF NEW.day_of_week IS DISTINCT FROM OLD.day_of_week THEN NEW.day := NULL; END IF;
        IF NEW.exercise_id IS DISTINCT FROM OLD.exercise_id THEN
            NEW.exercise_key := NULL;
            NEW.exercise_name := NULL;
        END IF;
        IF NEW.exercise_key IS DISTINCT FROM OLD.exercise_key THEN NEW.exercise_id := NULL; END IF;
    END IF;
    NEW.plan_id := coalesce(NEW.plan_id, NEW.workout_plan_id);
    NEW.workout_plan_id := NEW.plan_id;
    NEW.week := coalesce(NEW.week, NEW.week_number);
    NEW.week_number := NEW.week;
    NEW.day_of_week := coalesce(NEW.day_of_week, array_position(days, NEW.day::text));
    NEW.day := days[NEW.day_of_week]::weekday;
    NEW.day_focus := coalesce(NEW.day_focus, NEW.day_name);
    NEW.day_name := coalesce(NEW.day_name, NEW.day_focus);
    IF NEW.exercise_id IS NULL THEN
        SELECT id, required_equipment INTO NEW.exercise_id, NEW.equipment FROM exercises WHERE key = NEW.exercise_key;
    ELSIF NEW.exercise_key IS NULL OR NEW.exercise_name IS NULL THEN
        SELECT key, coalesce(NEW.exercise_name, name) INTO NEW.exercise_key, NEW.exercise_name
        FROM exercises WHERE id = NEW.exercise_id;
    END IF;
    IF NEW.date IS NULL THEN
        SELECT p.start_date + (NEW.week - 1) * 7 + (NEW.day_of_week - extract(isodow FROM p.start_date)::int + 7) % 7
        INTO NEW.date FROM workout_plans p WHERE p.id = NEW.plan_id;
    END IF;
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS same_as_original ON workout_entries;
CREATE TRIGGER same_as_original BEFORE INSERT OR UPDATE ON workout_entries
    FOR EACH ROW EXECUTE FUNCTION workout_entries_same_as_original();

-- Exercises: a new exercise of ours whose name the original's catalogue already has takes that
-- row over (it gets our key) instead of failing on the original's UNIQUE (name); a profile fills
-- the original's text columns that are still empty (an original exercise keeps its own text).
CREATE OR REPLACE FUNCTION exercises_same_as_original() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
DECLARE
    profile jsonb := NEW.profile;
BEGIN
    IF TG_OP = 'INSERT' AND NEW.key IS NOT NULL THEN
        UPDATE exercises
        SET key = NEW.key,
            profile = coalesce(exercises.profile, NEW.profile),
            profiled_at = coalesce(exercises.profiled_at, NEW.profiled_at)
        WHERE exercises.key IS NULL AND (exercises.name = NEW.name OR exercises.slug = NEW.key);
        IF FOUND THEN
            RETURN NULL;  -- the original's row is ours now; nothing to insert
        END IF;
        NEW.slug := coalesce(NEW.slug, NEW.key);
    END IF;
    IF profile IS NOT NULL AND (TG_OP = 'INSERT' OR OLD.profile IS NULL) THEN
        IF NEW.instructions = '' THEN
            NEW.instructions := array_to_string(ARRAY(SELECT jsonb_array_elements_text(profile -> 'instructions')), E'\n');
        END IF;
        IF NEW.equipment_text = '' THEN
            NEW.equipment_text := array_to_string(ARRAY(SELECT jsonb_array_elements_text(profile -> 'equipment')), ', ');
        END IF;
        IF NEW.equipment_groups = '[]'::jsonb THEN
            NEW.equipment_groups := coalesce(profile -> 'equipment', '[]');
        END IF;
        IF NEW.trainer_notes = '' THEN
            NEW.trainer_notes := array_to_string(ARRAY(SELECT jsonb_array_elements_text(profile -> 'cues')), E'\n');
        END IF;
        NEW.muscle_categories := coalesce(
            NEW.muscle_categories, ARRAY(SELECT jsonb_array_elements_text(profile -> 'primary_muscles')));
        NEW.required_equipment := coalesce(NEW.required_equipment, NEW.equipment_text);
    END IF;
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS same_as_original ON exercises;
CREATE TRIGGER same_as_original BEFORE INSERT OR UPDATE ON exercises
    FOR EACH ROW EXECUTE FUNCTION exercises_same_as_original();

-- Rows written before these triggers: our exercises' profiles in the original's columns.
UPDATE exercises
SET instructions = array_to_string(ARRAY(SELECT jsonb_array_elements_text(profile -> 'instructions')), E'\n'),
    equipment_text = array_to_string(ARRAY(SELECT jsonb_array_elements_text(profile -> 'equipment')), ', '),
    equipment_groups = coalesce(profile -> 'equipment', '[]'),
    trainer_notes = array_to_string(ARRAY(SELECT jsonb_array_elements_text(profile -> 'cues')), E'\n'),
    muscle_categories = ARRAY(SELECT jsonb_array_elements_text(profile -> 'primary_muscles')),
    required_equipment = array_to_string(ARRAY(SELECT jsonb_array_elements_text(profile -> 'equipment')), ', ')
WHERE profile IS NOT NULL AND instructions = '';
UPDATE workout_entries e SET equipment = x.required_equipment
FROM exercises x WHERE x.id = e.exercise_id AND e.equipment IS NULL AND x.required_equipment IS NOT NULL;
