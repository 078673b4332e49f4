"""A catalogue of real exercises, tagged so plans can be assembled and profiles written from it."""

import re
from dataclasses import dataclass
from enum import StrEnum


class Pattern(StrEnum):
    """The movement an exercise trains; plan templates ask for patterns, not names."""

    SQUAT = "squat"
    HINGE = "hinge"
    LUNGE = "lunge"
    GLUTES = "glutes"
    HORIZONTAL_PUSH = "hpush"
    VERTICAL_PUSH = "vpush"
    HORIZONTAL_PULL = "hpull"
    VERTICAL_PULL = "vpull"
    SHOULDERS = "shoulders"
    BICEPS = "biceps"
    TRICEPS = "triceps"
    CALVES = "calves"
    CORE = "core"
    CONDITIONING = "conditioning"


class Gear(StrEnum):
    """Equipment an exercise needs. Bodyweight exercises need none."""

    BARBELL = "barbell"
    RACK = "rack"
    BENCH = "bench"
    DUMBBELL = "dumbbell"
    KETTLEBELL = "kettlebell"
    BAND = "band"
    CABLE = "cable"
    MACHINE = "machine"
    PULLUP_BAR = "pullup_bar"
    DIP_BAR = "dip_bar"


class Joint(StrEnum):
    """Joints a person may report as injured; exercises that load them hard are left out."""

    KNEE = "knee"
    LOWER_BACK = "lower_back"
    SHOULDER = "shoulder"


class Level(StrEnum):
    """Training experience, as ``ExerciseProfile.difficulty`` spells it."""

    BEGINNER = "beginner"
    INTERMEDIATE = "intermediate"
    ADVANCED = "advanced"

    @property
    def rank(self) -> int:
        return list(Level).index(self)


class Dose(StrEnum):
    """How an exercise is prescribed: repetitions, a hold or interval time, or a distance."""

    REPS = "reps"
    TIME = "time"
    DISTANCE = "distance"


@dataclass(frozen=True)
class Exercise:
    """One catalogue entry."""

    name: str
    patterns: tuple[Pattern, ...]
    needs: frozenset[Gear]
    level: Level
    primary: tuple[str, ...]
    secondary: tuple[str, ...]
    description: str
    cues: tuple[str, ...]
    stresses: frozenset[Joint]
    compound: bool
    dose: Dose
    unilateral: bool
    machine: str

    @property
    def equipment_labels(self) -> list[str]:
        """Human-readable equipment, as a profile lists it."""
        if not self.needs:
            return ["bodyweight"]
        labels = {
            Gear.BARBELL: "barbell",
            Gear.RACK: "squat rack",
            Gear.BENCH: "bench",
            Gear.DUMBBELL: "dumbbells",
            Gear.KETTLEBELL: "kettlebell",
            Gear.BAND: "resistance band",
            Gear.CABLE: "cable station",
            Gear.MACHINE: self.machine,
            Gear.PULLUP_BAR: "pull-up bar",
            Gear.DIP_BAR: "dip station",
        }
        return [labels[gear] for gear in Gear if gear in self.needs]


def _exercise(  # noqa: PLR0917 - catalogue rows below read as positional columns
    name: str,
    patterns: str,
    needs: str,
    level: str,
    primary: str,
    secondary: str,
    description: str,
    cues: str,
    *,
    stresses: str = "",
    compound: bool = True,
    dose: str = "reps",
    unilateral: bool = False,
    machine: str = "",
) -> Exercise:
    # Space- and comma-separated strings keep the table below readable; they are parsed once at import.
    return Exercise(
        name=name,
        patterns=tuple(Pattern(p) for p in patterns.split()),
        needs=frozenset(Gear(g) for g in needs.split()),
        level=Level(level),
        primary=tuple(m.strip() for m in primary.split(",") if m.strip()),
        secondary=tuple(m.strip() for m in secondary.split(",") if m.strip()),
        description=description,
        cues=tuple(c.strip() for c in cues.split(";") if c.strip()),
        stresses=frozenset(Joint(j) for j in stresses.split()),
        compound=compound,
        dose=Dose(dose),
        unilateral=unilateral,
        machine=machine or f"{name.lower()} machine",
    )


# A table: one entry per exercise, its columns in _exercise's positional order, kept compact.
# fmt: off
CATALOGUE: tuple[Exercise, ...] = (
    # Squat pattern
    _exercise(
        "Barbell Back Squat", "squat", "barbell rack", "intermediate", "quadriceps, glutes",
        "hamstrings, adductors, spinal erectors, core",
        "The classic lower-body strength lift: a loaded squat with the bar across the upper back.",
        "Brace before you descend; Knees track over the toes; Hit at least parallel; Drive the floor away",
        stresses="knee lower_back",
    ),
    _exercise(
        "Front Squat", "squat", "barbell rack", "advanced", "quadriceps, glutes", "upper back, core, adductors",
        "A squat with the bar racked on the front of the shoulders, demanding an upright torso.",
        "Elbows high throughout; Stay tall through the torso; Sit straight down between the hips",
        stresses="knee",
    ),
    _exercise(
        "Goblet Squat", "squat", "dumbbell", "beginner", "quadriceps, glutes", "adductors, core, upper back",
        "A squat holding one dumbbell at the chest, which makes good depth and posture easy to learn.",
        "Hold the dumbbell tight to the chest; Elbows inside the knees at the bottom; Keep the heels down",
        stresses="knee",
    ),
    _exercise(
        "Bodyweight Squat", "squat", "", "beginner", "quadriceps, glutes", "hamstrings, core",
        "An unloaded squat that builds the movement pattern and leg endurance.",
        "Reach the arms forward for balance; Sit between the heels; Stand up tall and squeeze the glutes",
        stresses="knee",
    ),
    _exercise(
        "Leg Press", "squat", "machine", "beginner", "quadriceps, glutes", "hamstrings, adductors",
        "A machine press that loads the legs heavily while the back stays supported.",
        "Keep the lower back against the pad; Lower until the knees reach about 90 degrees; Do not lock out hard",
        stresses="knee",
    ),
    _exercise(
        "Hack Squat", "squat", "machine", "intermediate", "quadriceps", "glutes, adductors",
        "A machine squat on an angled sled that lets the quadriceps work hard with little balance demand.",
        "Feet mid-platform; Control the descent; Push through the whole foot",
        stresses="knee",
    ),
    _exercise(
        "Leg Extension", "squat", "machine", "beginner", "quadriceps", "",
        "An isolation exercise for the quadriceps on a seated machine.",
        "Line the knee up with the machine's pivot; Squeeze at the top for a second; Lower slowly",
        stresses="knee", compound=False,
    ),
    _exercise(
        "Wall Sit", "squat", "", "beginner", "quadriceps", "glutes, calves",
        "An isometric squat hold against a wall that builds quadriceps endurance.",
        "Thighs parallel to the floor; Back flat against the wall; Breathe steadily",
        stresses="knee", compound=False, dose="time",
    ),
    # Hinge pattern
    _exercise(
        "Conventional Deadlift", "hinge", "barbell", "intermediate", "hamstrings, glutes, spinal erectors",
        "quadriceps, lats, trapezius, forearms",
        "Lifting a loaded barbell from the floor to standing: the fundamental full-body pull.",
        "Bar over mid-foot; Pull the slack out of the bar; Push the floor away; Lock out with the glutes",
        stresses="lower_back",
    ),
    _exercise(
        "Romanian Deadlift", "hinge", "barbell", "intermediate", "hamstrings, glutes", "spinal erectors, forearms",
        "A hip hinge from standing that lowers the bar along the legs to stretch and load the hamstrings.",
        "Soft knees, hips travel back; Bar stays in contact with the legs; Stop when the hamstrings are stretched",
        stresses="lower_back",
    ),
    _exercise(
        "Dumbbell Romanian Deadlift", "hinge", "dumbbell", "beginner", "hamstrings, glutes",
        "spinal erectors, forearms",
        "The Romanian deadlift with a dumbbell in each hand, friendlier to learn and to load at home.",
        "Push the hips back; Keep the dumbbells close to the legs; Neutral spine throughout",
        stresses="lower_back",
    ),
    _exercise(
        "Trap Bar Deadlift", "hinge squat", "barbell", "intermediate", "glutes, quadriceps, hamstrings",
        "spinal erectors, trapezius, forearms",
        "A deadlift from inside a hexagonal bar, which keeps the load centred and the back more upright.",
        "Stand in the centre of the bar; Chest up, hips down; Drive through the legs to stand",
        stresses="lower_back",
    ),
    _exercise(
        "Kettlebell Swing", "hinge conditioning", "kettlebell", "intermediate", "glutes, hamstrings",
        "core, shoulders, forearms",
        "An explosive hip hinge that swings a kettlebell to chest height, building power and conditioning.",
        "Hike the bell back between the legs; Snap the hips forward; Let the arms float, do not lift with them",
        stresses="lower_back",
    ),
    _exercise(
        "Good Morning", "hinge", "barbell rack", "advanced", "hamstrings, spinal erectors", "glutes",
        "A hinge with the bar on the upper back that strengthens the posterior chain.",
        "Start light; Hips back with soft knees; Keep the spine long",
        stresses="lower_back",
    ),
    _exercise(
        "Lying Leg Curl", "hinge", "machine", "beginner", "hamstrings", "calves",
        "A machine curl that isolates the hamstrings through knee flexion.",
        "Hips pressed into the pad; Curl all the way; Lower under control",
        compound=False,
    ),
    _exercise(
        "Back Extension", "hinge", "machine", "beginner", "spinal erectors, glutes", "hamstrings",
        "A hinge on a 45-degree bench that strengthens the lower back and glutes.",
        "Hinge at the hips, not the lower back; Stop at a straight line; Squeeze the glutes at the top",
        stresses="lower_back", compound=False, machine="45-degree back extension bench",
    ),
    # Glute bridges and thrusts (knee- and back-friendly lower-body options)
    _exercise(
        "Barbell Hip Thrust", "glutes hinge", "barbell bench", "intermediate", "glutes", "hamstrings, adductors",
        "A loaded hip extension with the shoulders on a bench: one of the best glute builders.",
        "Chin tucked, ribs down; Drive through the heels; Pause with the hips fully extended",
    ),
    _exercise(
        "Glute Bridge", "glutes hinge", "", "beginner", "glutes", "hamstrings, core",
        "A hip extension lying on the floor that wakes up and strengthens the glutes.",
        "Feet flat, close to the hips; Push through the heels; Squeeze the glutes at the top",
        compound=False,
    ),
    _exercise(
        "Single-Leg Glute Bridge", "glutes", "", "intermediate", "glutes", "hamstrings, core",
        "A one-legged bridge that doubles the load on each glute without any equipment.",
        "Keep the hips level; Drive through the planted heel; Pause at the top",
        compound=False, unilateral=True,
    ),
    _exercise(
        "Dumbbell Hip Thrust", "glutes hinge", "dumbbell", "beginner", "glutes", "hamstrings",
        "A hip thrust with a dumbbell on the hips, shoulders resting on a bench, sofa or the floor.",
        "Hold the dumbbell steady on the hip crease; Ribs down; Squeeze hard at the top",
    ),
    # Lunges and single-leg work
    _exercise(
        "Dumbbell Walking Lunge", "lunge", "dumbbell", "intermediate", "quadriceps, glutes",
        "hamstrings, adductors, core",
        "Alternating forward lunges travelling across the floor with a dumbbell in each hand.",
        "Long enough step for a vertical shin; Back knee kisses the floor; Stay tall",
        stresses="knee", unilateral=True,
    ),
    _exercise(
        "Bulgarian Split Squat", "lunge squat", "dumbbell", "intermediate", "quadriceps, glutes",
        "adductors, hamstrings, core",
        "A split squat with the rear foot elevated on a bench or chair: demanding, effective single-leg work.",
        "Most weight on the front foot; Drop the back knee straight down; Keep the front heel planted",
        stresses="knee", unilateral=True,
    ),
    _exercise(
        "Reverse Lunge", "lunge", "", "beginner", "quadriceps, glutes", "hamstrings, core",
        "A lunge stepping backwards, which is easier on the knees than a forward lunge.",
        "Step back softly; Front knee over the mid-foot; Push through the front heel to return",
        stresses="knee", unilateral=True,
    ),
    _exercise(
        "Dumbbell Step-Up", "lunge", "dumbbell bench", "beginner", "quadriceps, glutes", "hamstrings, calves",
        "Stepping onto a box or bench with dumbbells in hand: simple, effective single-leg strength.",
        "Whole foot on the box; Drive through the top leg, not the back foot; Lower under control",
        stresses="knee", unilateral=True,
    ),
    # Horizontal pushing
    _exercise(
        "Barbell Bench Press", "hpush", "barbell bench rack", "intermediate", "chest", "triceps, front deltoids",
        "The staple upper-body press: lowering a barbell to the chest and pressing it back up, lying on a bench.",
        "Shoulder blades pinched and down; Feet planted; Touch the lower chest; Press back over the shoulders",
        stresses="shoulder",
    ),
    _exercise(
        "Dumbbell Bench Press", "hpush", "dumbbell bench", "beginner", "chest", "triceps, front deltoids",
        "A bench press with dumbbells, which allows a natural path for each arm.",
        "Elbows about 45 degrees from the body; Lower to chest level; Press up and slightly in",
    ),
    _exercise(
        "Incline Dumbbell Press", "hpush", "dumbbell bench", "intermediate", "upper chest",
        "front deltoids, triceps",
        "A dumbbell press on a 30-degree incline that emphasises the upper chest.",
        "Bench at about 30 degrees; Keep the wrists stacked over the elbows; Control the bottom position",
    ),
    _exercise(
        "Dumbbell Floor Press", "hpush", "dumbbell", "beginner", "chest, triceps", "front deltoids",
        "A dumbbell press lying on the floor; the floor limits the range, which spares the shoulders.",
        "Upper arms touch the floor softly; Pause, then press; Keep the wrists straight",
    ),
    _exercise(
        "Push-Up", "hpush", "", "beginner", "chest, triceps", "front deltoids, core",
        "The fundamental bodyweight press, scalable from the knees or an incline to weighted versions.",
        "Body in one straight line; Hands just outside the shoulders; Chest to the floor",
    ),
    _exercise(
        "Incline Push-Up", "hpush", "", "beginner", "chest, triceps", "front deltoids, core",
        "A push-up with the hands on a bench, table or wall, making the movement easier to master.",
        "Hands on a sturdy surface; Body stays rigid; Lower the chest to the edge",
    ),
    _exercise(
        "Machine Chest Press", "hpush", "machine", "beginner", "chest", "triceps, front deltoids",
        "A seated pressing machine that trains the chest safely without a spotter.",
        "Handles at mid-chest height; Shoulder blades back against the pad; Press without locking out hard",
        machine="chest press machine",
    ),
    _exercise(
        "Cable Chest Fly", "hpush", "cable", "beginner", "chest", "front deltoids",
        "A standing fly between two cable stacks that keeps tension on the chest through the whole range.",
        "Slight bend in the elbows; Hug a big tree; Squeeze the chest at the middle",
        stresses="shoulder", compound=False,
    ),
    _exercise(
        "Parallel Bar Dip", "hpush triceps", "dip_bar", "intermediate", "chest, triceps", "front deltoids",
        "Lowering and pressing the body between parallel bars: a heavy bodyweight press.",
        "Slight forward lean; Lower until the upper arms are parallel to the floor; Do not shrug",
        stresses="shoulder",
    ),
    # Vertical pushing
    _exercise(
        "Standing Overhead Press", "vpush", "barbell rack", "intermediate", "shoulders", "triceps, upper chest, core",
        "Pressing a barbell from the shoulders to overhead while standing: strength for the whole upper body.",
        "Squeeze the glutes and brace; Move the head back, then through; Finish with the bar over the mid-foot",
        stresses="shoulder lower_back",
    ),
    _exercise(
        "Seated Dumbbell Shoulder Press", "vpush", "dumbbell bench", "beginner", "shoulders", "triceps",
        "An overhead press with dumbbells, seated against a back support.",
        "Back against the pad; Elbows slightly in front of the body; Press to just short of lockout",
        stresses="shoulder",
    ),
    _exercise(
        "Arnold Press", "vpush", "dumbbell", "intermediate", "shoulders", "triceps, upper chest",
        "A rotating dumbbell press that takes the shoulders through a long range.",
        "Start palms facing you; Rotate as you press; Reverse the rotation on the way down",
        stresses="shoulder",
    ),
    _exercise(
        "Pike Push-Up", "vpush", "", "intermediate", "shoulders", "triceps, upper chest",
        "A push-up with the hips high, shifting the work to the shoulders without equipment.",
        "Hips high, head between the arms; Lower the head in front of the hands; Press back to the pike",
        stresses="shoulder",
    ),
    _exercise(
        "Half-Kneeling Landmine Press", "vpush", "barbell", "intermediate", "shoulders, upper chest",
        "triceps, core",
        "A one-arm press of a barbell anchored at one end; the angled path is kind to sensitive shoulders.",
        "Squeeze the glute of the down knee; Press up and forward; Reach at the top",
        unilateral=True,
    ),
    # Horizontal pulling
    _exercise(
        "Barbell Bent-Over Row", "hpull", "barbell", "intermediate", "lats, upper back", "biceps, rear deltoids",
        "Rowing a barbell to the stomach from a hinged position: a heavy builder for the whole back.",
        "Torso about 45 degrees; Pull the bar to the lower ribs; Do not jerk the torso",
        stresses="lower_back",
    ),
    _exercise(
        "One-Arm Dumbbell Row", "hpull", "dumbbell", "beginner", "lats, upper back", "biceps, rear deltoids",
        "A supported single-arm row that lets each side of the back work through a full range.",
        "Flat back, one hand braced; Pull the elbow to the hip; Pause at the top",
        unilateral=True,
    ),
    _exercise(
        "Chest-Supported Dumbbell Row", "hpull", "dumbbell bench", "beginner", "upper back, lats",
        "rear deltoids, biceps",
        "Rowing face-down on an incline bench, which removes the lower back from the movement.",
        "Chest stays on the pad; Squeeze the shoulder blades together; Lower all the way",
    ),
    _exercise(
        "Seated Cable Row", "hpull", "cable", "beginner", "lats, upper back", "biceps, rear deltoids",
        "A seated row to the stomach on a cable machine with constant tension.",
        "Sit tall; Lead with the elbows; Let the shoulder blades stretch forward between reps",
    ),
    _exercise(
        "Inverted Row", "hpull", "rack", "beginner", "upper back, lats", "biceps, core",
        "A bodyweight row under a bar set in a rack: the horizontal counterpart to the pull-up.",
        "Heels down, body straight; Pull the chest to the bar; Lower slowly",
    ),
    _exercise(
        "Band Row", "hpull", "band", "beginner", "upper back, lats", "biceps, rear deltoids",
        "A row against a resistance band anchored in front of you, easy to do anywhere.",
        "Anchor at chest height; Pull the elbows back past the ribs; Resist the band on the way back",
    ),
    _exercise(
        "Face Pull", "hpull shoulders", "cable", "beginner", "rear deltoids, upper back", "rotator cuff, biceps",
        "A high cable pull to the face that strengthens the rear shoulders and improves posture.",
        "Rope at face height; Pull the hands beside the ears; Thumbs point back at the finish",
        compound=False,
    ),
    _exercise(
        "Band Pull-Apart", "shoulders hpull", "band", "beginner", "rear deltoids, upper back", "rotator cuff",
        "Pulling a band apart in front of the chest: a light, shoulder-friendly posture exercise.",
        "Arms straight at shoulder height; Squeeze the shoulder blades; Control the return",
        compound=False,
    ),
    _exercise(
        "Prone Y-T-W Raise", "shoulders hpull", "", "beginner", "upper back, rear deltoids",
        "rotator cuff, lower trapezius",
        "Lying face down and raising the arms in Y, T and W shapes to strengthen the upper back.",
        "Thumbs up; Lift from the shoulder blades, not the lower back; Hold each position briefly",
        compound=False,
    ),
    _exercise(
        "Reverse Snow Angel", "shoulders hpull", "", "beginner", "upper back, rear deltoids", "lower trapezius",
        "Lying face down and sweeping the arms from the hips to overhead, strengthening the upper back.",
        "Forehead rests on a towel; Arms hover off the floor; Move slowly through the full arc",
        compound=False,
    ),
    _exercise(
        "Superman Hold", "hinge core", "", "beginner", "spinal erectors, glutes", "upper back, hamstrings",
        "Lying face down and lifting arms and legs off the floor to strengthen the whole back line.",
        "Lift from the glutes and upper back; Keep the neck long; Breathe while you hold",
        compound=False, dose="time",
    ),
    # Vertical pulling
    _exercise(
        "Pull-Up", "vpull", "pullup_bar", "intermediate", "lats", "biceps, upper back, core",
        "Pulling the body up to an overhand bar until the chin clears it: the benchmark upper-body pull.",
        "Start from a dead hang; Drive the elbows down to the ribs; Chin over the bar without kipping",
    ),
    _exercise(
        "Chin-Up", "vpull biceps", "pullup_bar", "intermediate", "lats, biceps", "upper back, core",
        "A pull-up with an underhand grip, which recruits more biceps.",
        "Palms facing you, shoulder-width; Chest up to the bar; Lower all the way",
    ),
    _exercise(
        "Lat Pulldown", "vpull", "cable", "beginner", "lats", "biceps, upper back",
        "A seated cable pull to the upper chest that builds the lats and prepares for pull-ups.",
        "Thighs locked under the pad; Pull the bar to the collarbones; Slight lean back, no swinging",
    ),
    _exercise(
        "Assisted Pull-Up", "vpull", "machine", "beginner", "lats", "biceps, upper back",
        "A pull-up on a counterweighted machine, scaling the movement to your strength.",
        "Knees on the pad; Full range from a dead hang; Reduce the assistance over time",
    ),
    _exercise(
        "Band Lat Pulldown", "vpull", "band", "beginner", "lats", "biceps, upper back",
        "A pulldown against a band anchored overhead, for training the lats without a machine.",
        "Anchor the band high; Pull the elbows down and back; Control the band back up",
    ),
    # Shoulder, arm and calf isolation
    _exercise(
        "Dumbbell Lateral Raise", "shoulders", "dumbbell", "beginner", "side deltoids", "upper trapezius",
        "Raising dumbbells out to the sides to build the side of the shoulders.",
        "Lead with the elbows; Stop at shoulder height; Slow on the way down",
        compound=False,
    ),
    _exercise(
        "Reverse Dumbbell Fly", "shoulders", "dumbbell", "beginner", "rear deltoids", "upper back",
        "A bent-over fly that trains the rear shoulders and upper back.",
        "Hinge forward with a flat back; Slight bend in the elbows; Squeeze the shoulder blades",
        compound=False,
    ),
    _exercise(
        "Dumbbell Biceps Curl", "biceps", "dumbbell", "beginner", "biceps", "forearms",
        "Curling dumbbells from the thighs to the shoulders to build the biceps.",
        "Elbows pinned to the sides; Turn the palms up as you curl; Lower slowly",
        compound=False,
    ),
    _exercise(
        "Hammer Curl", "biceps", "dumbbell", "beginner", "biceps, brachialis", "forearms",
        "A curl with the palms facing each other, working the biceps and forearms.",
        "Neutral grip throughout; No swinging; Squeeze at the top",
        compound=False,
    ),
    _exercise(
        "Barbell Curl", "biceps", "barbell", "beginner", "biceps", "forearms",
        "The classic standing curl with a barbell, easy to load progressively.",
        "Shoulder-width grip; Elbows stay still; Control the lowering",
        compound=False,
    ),
    _exercise(
        "Band Biceps Curl", "biceps", "band", "beginner", "biceps", "forearms",
        "A curl against a band under the feet: rising tension toward the top of the movement.",
        "Stand on the band; Elbows by the sides; Pause at the top",
        compound=False,
    ),
    _exercise(
        "Triceps Rope Pushdown", "triceps", "cable", "beginner", "triceps", "",
        "Pushing a rope down on a high cable to isolate the triceps.",
        "Elbows fixed by the sides; Spread the rope at the bottom; Let the forearms rise only to parallel",
        compound=False,
    ),
    _exercise(
        "Overhead Dumbbell Triceps Extension", "triceps", "dumbbell", "beginner", "triceps", "",
        "Lowering a dumbbell behind the head and extending it overhead, stretching the long head of the triceps.",
        "Elbows point forward; Lower behind the head; Extend fully without flaring",
        stresses="shoulder", compound=False,
    ),
    _exercise(
        "Diamond Push-Up", "triceps hpush", "", "intermediate", "triceps", "chest, front deltoids",
        "A push-up with the hands close together under the chest, shifting the load to the triceps.",
        "Index fingers and thumbs touching; Elbows close to the body; Full range",
    ),
    _exercise(
        "Band Triceps Pushdown", "triceps", "band", "beginner", "triceps", "",
        "A pushdown against a band anchored overhead, the home version of the cable pushdown.",
        "Anchor high; Elbows glued to the ribs; Lock out and squeeze",
        compound=False,
    ),
    _exercise(
        "Standing Calf Raise", "calves", "", "beginner", "calves", "",
        "Rising onto the toes to strengthen the calves; add a dumbbell or a step as it gets easy.",
        "Full stretch at the bottom; Pause on the toes; Slow on the way down",
        compound=False,
    ),
    _exercise(
        "Seated Calf Raise", "calves", "machine", "beginner", "calves (soleus)", "",
        "A seated machine raise that emphasises the deeper soleus muscle of the calf.",
        "Knee pad snug; Full range; Pause at the top",
        compound=False,
    ),
    # Core
    _exercise(
        "Plank", "core", "", "beginner", "abdominals, transverse abdominis", "shoulders, glutes",
        "A forearm plank that trains the core to resist the lower back sagging.",
        "Elbows under the shoulders; Squeeze the glutes; Do not let the hips sag or pike",
        compound=False, dose="time",
    ),
    _exercise(
        "Side Plank", "core", "", "beginner", "obliques", "glutes, shoulders",
        "A plank on one side that strengthens the obliques and the lateral hip.",
        "Elbow under the shoulder; Hips lifted in a straight line; Breathe",
        compound=False, dose="time", unilateral=True,
    ),
    _exercise(
        "Dead Bug", "core", "", "beginner", "abdominals", "hip flexors",
        "Lying on the back and extending opposite arm and leg while the lower back stays flat.",
        "Press the lower back into the floor; Move slowly; Exhale as you extend",
        compound=False,
    ),
    _exercise(
        "Bird Dog", "core", "", "beginner", "spinal erectors, abdominals", "glutes, shoulders",
        "On all fours, extending opposite arm and leg to build spinal stability; a staple for sore backs.",
        "Hips stay square; Reach long rather than high; Pause at full extension",
        compound=False, unilateral=True,
    ),
    _exercise(
        "Pallof Press", "core", "band", "beginner", "obliques, abdominals", "glutes, shoulders",
        "Pressing a band straight out from the chest while resisting its pull to the side: anti-rotation work.",
        "Stand side-on to the anchor; Press straight out; Do not let the torso twist",
        compound=False, unilateral=True,
    ),
    _exercise(
        "Hanging Knee Raise", "core", "pullup_bar", "intermediate", "abdominals, hip flexors", "forearms, lats",
        "Hanging from a bar and drawing the knees toward the chest.",
        "Start from a still hang; Curl the pelvis up; Lower without swinging",
        compound=False,
    ),
    _exercise(
        "Hollow Body Hold", "core", "", "intermediate", "abdominals", "hip flexors, quadriceps",
        "Holding a shallow banana shape on the back: the gymnast's foundation for core tension.",
        "Lower back pressed into the floor; Arms and legs long and low; Shorten the lever if the back lifts",
        compound=False, dose="time",
    ),
    _exercise(
        "Farmer's Carry", "core", "dumbbell", "beginner", "forearms, trapezius, core", "glutes, shoulders",
        "Walking with a heavy dumbbell in each hand: grip, posture and core strength in one.",
        "Stand tall; Shoulders down and back; Short, quick steps",
        dose="distance",
    ),
    _exercise(
        "Suitcase Carry", "core", "kettlebell", "intermediate", "obliques, forearms", "trapezius, glutes",
        "Carrying one heavy weight on one side, forcing the core to keep the torso upright.",
        "Do not lean toward or away from the weight; Walk slowly; Switch sides",
        dose="distance", unilateral=True,
    ),
    # Conditioning
    _exercise(
        "Mountain Climber", "conditioning core", "", "beginner", "core, hip flexors", "shoulders, quadriceps",
        "Driving the knees toward the chest alternately from a plank position at pace.",
        "Shoulders over the hands; Keep the hips low; Quick, light feet",
        compound=False, dose="time",
    ),
    _exercise(
        "Burpee", "conditioning", "", "intermediate", "quadriceps, chest, glutes", "shoulders, core, calves",
        "A squat thrust, push-up and jump in one: a demanding full-body conditioning exercise.",
        "Hands down, jump the feet back; Chest to the floor; Jump up and clap overhead",
        stresses="knee", dose="time",
    ),
    _exercise(
        "Jump Squat", "conditioning squat", "", "intermediate", "quadriceps, glutes", "calves, hamstrings",
        "An explosive squat jump for lower-body power.",
        "Quarter to half squat; Explode upward; Land softly and go again",
        stresses="knee",
    ),
    _exercise(
        "Jumping Jacks", "conditioning", "", "beginner", "calves, shoulders", "hip abductors",
        "A simple rhythmic jumping drill for raising the heart rate.",
        "Stay light on the toes; Arms fully overhead; Steady rhythm",
        stresses="knee", compound=False, dose="time",
    ),
    _exercise(
        "Rowing Machine Intervals", "conditioning", "machine", "beginner", "lats, quadriceps, glutes",
        "hamstrings, core, biceps",
        "Hard intervals on a rowing ergometer: full-body conditioning that is easy on the joints.",
        "Legs, then body, then arms; Reverse on the recovery; Hold a steady stroke rate",
        dose="time", machine="rowing machine",
    ),
    _exercise(
        "Assault Bike Sprints", "conditioning", "machine", "beginner", "quadriceps, glutes", "shoulders, calves",
        "All-out sprints on an air bike; arms and legs work together and the knees are spared impact.",
        "Push and pull with the arms; Stay seated; Go all out, then recover fully",
        dose="time", machine="air bike",
    ),
    _exercise(
        "Dumbbell Thruster", "conditioning vpush squat", "dumbbell", "intermediate", "quadriceps, shoulders",
        "glutes, triceps, core",
        "A front squat flowing straight into an overhead press: big, breathless full-body work.",
        "Dumbbells on the shoulders; Drive out of the squat into the press; Lock out overhead",
        stresses="knee shoulder",
    ),
    _exercise(
        "Kettlebell Clean", "conditioning hinge", "kettlebell", "advanced", "glutes, hamstrings",
        "trapezius, core, forearms",
        "An explosive pull of a kettlebell from the floor to the chest.",
        "Hinge, do not squat; Snap the hips; Catch the bell close to the chest",
        stresses="lower_back",
    ),
)
# fmt: on

_NOT_WORD = re.compile(r"[^a-z0-9]+")


def normalise_name(name: str) -> str:
    """Lower-case singular words joined by single spaces, for forgiving name matching."""
    words = _NOT_WORD.sub(" ", name.lower()).split()
    # A crude singular ('push ups' -> 'push up', 'lunges' -> 'lunge') that leaves 'press' alone.
    return " ".join(w[:-1] if len(w) >= 3 and w.endswith("s") and not w.endswith("ss") else w for w in words)


_BY_NAME = {normalise_name(e.name): e for e in CATALOGUE}


def find_exercise(name: str) -> Exercise | None:
    """The catalogue entry for ``name``: exact (ignoring case and punctuation), else the closest by words."""
    wanted = normalise_name(name)
    if not wanted:
        return None
    if wanted in _BY_NAME:
        return _BY_NAME[wanted]
    words = set(wanted.split())
    best: tuple[float, Exercise] | None = None
    for key, exercise in _BY_NAME.items():
        known = set(key.split())
        # Jaccard similarity of the words: 'Back Squat' finds 'Barbell Back Squat'; 'Squat Rack' finds nothing.
        score = len(words & known) / len(words | known)
        if score >= 0.5 and (best is None or score > best[0]):
            best = (score, exercise)
    return best[1] if best else None
