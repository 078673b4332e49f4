-- 0009's entries trigger, fixed for updates: when one side of a pair changes (the original app
-- swapping an entry's exercise, say), the other side is set from it. 0009 cleared the other side
-- first, which then counted as a change of its own and cleared both (a NOT NULL violation).
CREATE OR REPLACE FUNCTION workout_entries_same_as_original() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
DECLARE
    days CONSTANT text[] := ARRAY['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];
BEGIN
    IF TG_OP = 'UPDATE' THEN
        -- Whichever side changed wins; the other follows.
        IF NEW.workout_plan_id IS DISTINCT FROM OLD.workout_plan_id THEN
            NEW.plan_id := NEW.workout_plan_id;
        ELSIF NEW.plan_id IS DISTINCT FROM OLD.plan_id THEN
            NEW.workout_plan_id := NEW.plan_id;
        END IF;
        IF NEW.week_number IS DISTINCT FROM OLD.week_number THEN
            NEW.week := NEW.week_number;
        ELSIF NEW.week IS DISTINCT FROM OLD.week THEN
            NEW.week_number := NEW.week;
        END IF;
        IF NEW.day IS DISTINCT FROM OLD.day THEN
            NEW.day_of_week := array_position(days, NEW.day::text);
        ELSIF NEW.day_of_week IS DISTINCT FROM OLD.day_of_week THEN
            NEW.day := days[NEW.day_of_week]::weekday;
        END IF;
        IF NEW.exercise_id IS DISTINCT FROM OLD.exercise_id THEN
            SELECT key, name INTO NEW.exercise_key, NEW.exercise_name FROM exercises WHERE id = NEW.exercise_id;
        ELSIF NEW.exercise_key IS DISTINCT FROM OLD.exercise_key THEN
            SELECT id, name INTO NEW.exercise_id, NEW.exercise_name FROM exercises WHERE key = NEW.exercise_key;
        END IF;
        RETURN NEW;
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
