"""Exercise profiles: what an exercise is, how to do it, what it works and what it needs.

Catalogue exercises get their own description, muscles and cues; any other name gets sensible
text inferred from the words in it ("Zercher Squat" is a squat, "Cable Curl" a biceps curl).
"""

import random
import re
from dataclasses import dataclass

from contracts.plan import ExerciseProfile
from llm_simulator.catalogue import Exercise, Gear, Level, Pattern, find_exercise

P = Pattern


@dataclass(frozen=True)
class _PatternText:
    primary: tuple[str, ...]
    secondary: tuple[str, ...]
    summary: str
    steps: tuple[str, ...]
    cues: tuple[str, ...]


# fmt: off
_TEXT: dict[Pattern, _PatternText] = {
    P.SQUAT: _PatternText(
        ("quadriceps", "glutes"), ("hamstrings", "adductors", "core"),
        "a knee-dominant squat pattern that builds the quadriceps and glutes",
        (
            "Stand with your feet about shoulder-width apart and toes turned out slightly.",
            "Take a deep breath and brace your core as if about to be poked in the stomach.",
            "Sit down between your hips, knees tracking over your toes, until your thighs reach parallel or as "
            "deep as you can hold a neutral spine.",
            "Drive through the whole foot to stand up, exhaling as you pass the hardest point.",
        ),
        ("Brace before every rep", "Knees follow the toes", "Keep the whole foot planted"),
    ),
    P.HINGE: _PatternText(
        ("hamstrings", "glutes"), ("spinal erectors", "forearms"),
        "a hip hinge that trains the posterior chain",
        (
            "Stand with your feet about hip-width apart and a soft bend in the knees.",
            "Brace your core and keep your spine long from head to hips.",
            "Push your hips back and let your torso tip forward until you feel a strong stretch in the hamstrings.",
            "Drive your hips forward to stand tall, squeezing the glutes at the top without leaning back.",
        ),
        ("Hips back, not down", "Neutral spine throughout", "Finish with the glutes"),
    ),
    P.GLUTES: _PatternText(
        ("glutes",), ("hamstrings", "core"),
        "a hip extension exercise that targets the glutes",
        (
            "Set your upper back or shoulders on a stable surface with your feet flat and about hip-width apart.",
            "Tuck your chin and keep your ribs down.",
            "Drive through your heels to lift your hips until your body forms a straight line from shoulders to knees.",
            "Pause and squeeze the glutes, then lower under control.",
        ),
        ("Push through the heels", "Ribs down, chin tucked", "Pause at the top"),
    ),
    P.LUNGE: _PatternText(
        ("quadriceps", "glutes"), ("hamstrings", "adductors", "core"),
        "a single-leg exercise that builds leg strength, balance and hip stability",
        (
            "Stand tall with your feet hip-width apart.",
            "Take a controlled step into a split stance, long enough that the front shin stays close to vertical.",
            "Lower the back knee toward the floor while keeping your torso upright.",
            "Drive through the front foot to return, then repeat on the other side.",
        ),
        ("Stay tall through the torso", "Front knee tracks over the toes", "Control the descent"),
    ),
    P.HORIZONTAL_PUSH: _PatternText(
        ("chest",), ("triceps", "front deltoids"),
        "a horizontal press for the chest, shoulders and triceps",
        (
            "Set your hands or the handles slightly wider than shoulder-width.",
            "Pull your shoulder blades together and down, and keep them there.",
            "Lower under control until your hands or the weight reach chest level, elbows about 45 degrees from "
            "your body.",
            "Press back to the start, keeping your wrists stacked over your elbows.",
        ),
        ("Shoulder blades back and down", "Elbows at about 45 degrees", "Control the lowering"),
    ),
    P.VERTICAL_PUSH: _PatternText(
        ("shoulders",), ("triceps", "upper chest", "core"),
        "an overhead press that builds the shoulders and triceps",
        (
            "Start with the weight at shoulder height, elbows slightly in front of the body.",
            "Squeeze your glutes and brace your core so your lower back does not arch.",
            "Press the weight straight overhead until your arms are nearly locked out.",
            "Lower it back to your shoulders under control.",
        ),
        ("Brace and squeeze the glutes", "Press in a straight line", "Do not arch the lower back"),
    ),
    P.HORIZONTAL_PULL: _PatternText(
        ("upper back", "lats"), ("biceps", "rear deltoids"),
        "a rowing movement that builds the upper back and supports good posture",
        (
            "Set up with your arms extended and your spine neutral.",
            "Start the pull by drawing your shoulder blades back.",
            "Row the weight toward your lower ribs, leading with the elbows.",
            "Pause briefly, then return under control to a full stretch.",
        ),
        ("Lead with the elbows", "Squeeze the shoulder blades", "No jerking with the torso"),
    ),
    P.VERTICAL_PULL: _PatternText(
        ("lats",), ("biceps", "upper back", "core"),
        "a vertical pull that builds the lats and upper back",
        (
            "Take a grip slightly wider than shoulder-width with your arms fully extended.",
            "Set your shoulders down away from your ears before you pull.",
            "Pull your elbows down toward your ribs until your chin clears the bar or the bar reaches your upper "
            "chest.",
            "Return to a full stretch under control.",
        ),
        ("Shoulders down first", "Elbows to the ribs", "Full range every rep"),
    ),
    P.SHOULDERS: _PatternText(
        ("deltoids",), ("upper back", "rotator cuff"),
        "a shoulder isolation exercise",
        (
            "Stand or sit tall with a light weight and a slight bend in the elbows.",
            "Raise the weight in a slow arc, leading with the elbows.",
            "Stop at about shoulder height and pause briefly.",
            "Lower slowly back to the start.",
        ),
        ("Light weight, strict form", "Lead with the elbows", "Slow on the way down"),
    ),
    P.BICEPS: _PatternText(
        ("biceps",), ("forearms", "brachialis"),
        "an elbow-flexion exercise for the biceps",
        (
            "Stand tall holding the weight with your arms straight and elbows by your sides.",
            "Curl the weight up by bending at the elbows, keeping the upper arms still.",
            "Squeeze the biceps at the top.",
            "Lower slowly until your arms are fully straight.",
        ),
        ("Elbows stay pinned", "No swinging", "Lower for two seconds"),
    ),
    P.TRICEPS: _PatternText(
        ("triceps",), ("forearms",),
        "an elbow-extension exercise for the triceps",
        (
            "Set up with your elbows bent and your upper arms fixed in position.",
            "Extend your elbows fully, squeezing the triceps.",
            "Pause briefly at full extension.",
            "Return slowly to the bent-elbow position.",
        ),
        ("Upper arms stay still", "Full lockout", "Control the return"),
    ),
    P.CALVES: _PatternText(
        ("calves",), (),
        "a calf-raise exercise for the lower legs",
        (
            "Stand with the balls of your feet on the platform or floor.",
            "Lower your heels for a full stretch.",
            "Rise onto your toes as high as you can.",
            "Pause at the top, then lower slowly.",
        ),
        ("Full stretch at the bottom", "Pause at the top", "No bouncing"),
    ),
    P.CORE: _PatternText(
        ("abdominals", "obliques"), ("hip flexors", "spinal erectors"),
        "a core exercise that trains the trunk to stay stable",
        (
            "Set up in the starting position with your spine neutral.",
            "Brace your abdominals and breathe behind the brace.",
            "Perform the movement or hold slowly, without letting your lower back arch or your hips sag.",
            "Stop the set as soon as you can no longer keep the position.",
        ),
        ("Ribs down", "Breathe steadily", "Quality over quantity"),
    ),
    P.CONDITIONING: _PatternText(
        ("full body",), ("cardiovascular system", "legs", "shoulders"),
        "a conditioning exercise that raises the heart rate and builds work capacity",
        (
            "Warm up for a few minutes at an easy pace.",
            "Start the interval and work at a hard but repeatable effort.",
            "Keep your form crisp; slow down before technique breaks.",
            "Recover fully in the rest period before the next interval.",
        ),
        ("Repeatable effort", "Form before speed", "Breathe through the rest"),
    ),
}
# fmt: on

_SETUP: dict[Gear, str] = {
    Gear.BARBELL: "Load the barbell with a weight you can control and take an even, firm grip.",
    Gear.DUMBBELL: "Pick a pair of dumbbells you can control for every rep.",
    Gear.KETTLEBELL: "Choose a kettlebell you can control and set it in front of you.",
    Gear.CABLE: "Set the cable pulley to the right height and attach the handle.",
    Gear.MACHINE: "Adjust the seat and pads so your joints line up with the machine's pivot.",
    Gear.BAND: "Anchor the resistance band securely at the right height.",
    Gear.PULLUP_BAR: "Check that the bar is secure and take your grip.",
}

# Name words to a pattern, most specific first ("leg curl" is a hinge, "curl" is biceps).
_NAME_PATTERNS: tuple[tuple[str, Pattern], ...] = (
    (r"leg curl|hamstring curl|nordic", P.HINGE),
    (r"calf", P.CALVES),
    (r"thrust|bridge|kickback|abduct", P.GLUTES),
    (r"lunge|split squat|step[- ]?up|pistol", P.LUNGE),
    (r"squat|leg press|leg extension|sissy", P.SQUAT),
    (r"deadlift|\brdl\b|good morning|swing|hinge|hyperextension|back extension", P.HINGE),
    (r"pull[- ]?up|chin[- ]?up|pulldown|pull[- ]?down|muscle[- ]?up", P.VERTICAL_PULL),
    (r"\brow\b|rows\b|face pull|pull[- ]?apart|shrug", P.HORIZONTAL_PULL),
    (r"overhead press|shoulder press|military|push press|pike|handstand|arnold|landmine press", P.VERTICAL_PUSH),
    (r"bench|push[- ]?up|press[- ]?up|chest|fly|flye|floor press|\bdips?\b", P.HORIZONTAL_PUSH),
    (r"curl", P.BICEPS),
    (r"tricep|pushdown|skull|extension|kickback", P.TRICEPS),
    (r"lateral raise|front raise|rear delt|reverse fly|y[- ]raise|upright row", P.SHOULDERS),
    (r"plank|crunch|sit[- ]?up|twist|rollout|hollow|dead bug|bird dog|\bab\b|abs\b|core|leg raise|carry|pallof",
     P.CORE),
    (r"burpee|jump|sprint|\brun|bike|rower|rowing|jack|climber|skip|rope|interval|thruster|battle", P.CONDITIONING),
)  # fmt: skip
_NAME_GEAR: tuple[tuple[str, Gear], ...] = (
    (r"barbell|trap bar|landmine|smith", Gear.BARBELL),
    (r"dumbbell|\bdb\b", Gear.DUMBBELL),
    (r"kettlebell|\bkb\b", Gear.KETTLEBELL),
    (r"cable|pulldown|pushdown|face pull", Gear.CABLE),
    (r"machine|leg press|leg extension|leg curl|hack|pec deck|bike|rower", Gear.MACHINE),
    (r"band", Gear.BAND),
    (r"pull[- ]?up|chin[- ]?up|hanging", Gear.PULLUP_BAR),
)
_HARD_WORDS = re.compile(r"pistol|muscle[- ]?up|handstand|snatch|clean|jerk|nordic|dragon|single[- ]arm|one[- ]arm")
_EASY_WORDS = re.compile(r"assisted|wall|knee|incline push|machine|band|bodyweight|glute bridge|bird dog|dead bug")


def write_profile(name: str, rng: random.Random) -> ExerciseProfile:
    """A profile of ``name``, echoing the name exactly as asked so the caller can key it."""
    known = find_exercise(name)
    if known is not None:
        return _from_catalogue(name, known, rng)
    return _inferred(name, rng)


def _from_catalogue(name: str, exercise: Exercise, rng: random.Random) -> ExerciseProfile:
    text = _TEXT[exercise.patterns[0]]
    setup = next((_SETUP[g] for g in _SETUP if g in exercise.needs), "Find a clear, non-slip space to work in.")
    steps = [setup, *text.steps]
    if rng.random() < 0.5:
        steps.append("Rest, then repeat for the prescribed sets, keeping every rep as clean as the first.")
    cues = list(exercise.cues)
    extra = [c for c in text.cues if c not in cues]
    cues += rng.sample(extra, k=min(len(extra), rng.randint(0, 2)))
    description = f"{exercise.description} It is {text.summary}."
    return ExerciseProfile(
        name=name,
        description=description,
        instructions=steps[:6],
        primary_muscles=list(exercise.primary)[:8],
        secondary_muscles=list(exercise.secondary)[:8],
        equipment=exercise.equipment_labels[:8],
        cues=cues[:8],
        difficulty=exercise.level.value,
    )


def _inferred(name: str, rng: random.Random) -> ExerciseProfile:
    lowered = name.lower()
    pattern = next((p for words, p in _NAME_PATTERNS if re.search(words, lowered)), P.CORE)
    gear = [g for words, g in _NAME_GEAR if re.search(words, lowered)]
    text = _TEXT[pattern]
    setup = _SETUP[gear[0]] if gear and gear[0] in _SETUP else "Find a clear, non-slip space to work in."
    if _HARD_WORDS.search(lowered):
        level = Level.ADVANCED
    elif _EASY_WORDS.search(lowered):
        level = Level.BEGINNER
    else:
        level = rng.choice((Level.BEGINNER, Level.INTERMEDIATE, Level.INTERMEDIATE))
    equipment = {
        Gear.BARBELL: "barbell",
        Gear.DUMBBELL: "dumbbells",
        Gear.KETTLEBELL: "kettlebell",
        Gear.CABLE: "cable station",
        Gear.MACHINE: "machine",
        Gear.BAND: "resistance band",
        Gear.PULLUP_BAR: "pull-up bar",
    }
    return ExerciseProfile(
        name=name,
        description=f"The {name.strip()} is {text.summary}. Start light, master the technique, then add load or "
        "difficulty gradually.",
        instructions=[setup, *text.steps],
        primary_muscles=list(text.primary),
        secondary_muscles=list(text.secondary),
        equipment=[equipment[g] for g in gear] or ["bodyweight"],
        cues=list(text.cues),
        difficulty=level.value,
    )
