"""Phrasings that mean a crisis or a medical emergency, as compact patterns.

Each pattern is a sequence of slots over normalised word keys (lower-case
lemmas, contractions expanded, common SMS spellings and typos mapped, see
``KEY_SPELLINGS``), so "I'm gonna kill myself", "im gonna kms" and
"she's killing herself" all reach the same pattern.

Slot syntax: ``a|b`` any of these keys; a leading ``?`` makes the slot
optional; ``*`` is one optional word of any kind. "to" is never needed
("wanna die" has none).

Where the line is drawn (and why):
- Crisis: first- or third-person statements of wanting to die, to be dead
  or not alive, to end one's life, to kill or hurt oneself, suicidal
  thoughts or plans, not wanting to wake up, being better off gone. A
  family member reporting this *now* is a crisis too: the person writing
  needs 988's help to help them.
- Not crisis: death and violence idioms about pain, waiting or paperwork
  ("this pain is killing me", "I'd kill for sleep", "kill me now"), and
  exhaustion or low mood without a wish to die. They get a kind normal
  answer that still names 988.
- Emergency: signs that need 911 now (can't breathe, throat closing,
  unresponsive, overdose, stroke signs, bleeding that won't stop). Chest
  pain alone is left to the trained model; with breathing trouble it is
  certain.
"""

from dataclasses import dataclass
from typing import Dict, Tuple


@dataclass(frozen=True)
class SafetyPattern:
    name: str
    kind: str  # "crisis", "emergency", "emergency_sign" (needs a second sign) or a denial
    slots: str
    # A pattern that already contains its negation ("don't want to live") is
    # not undone by one; others are ("I'm not suicidal").
    negatable: bool = True
    # A key that, right after the match, means something else
    # ("not responding to treatment").
    unless_next: str = ""


CRISIS = "crisis"
EMERGENCY = "emergency"
EMERGENCY_SIGN = "emergency_sign"
# Explicit denials: never a match, they overrule the model's guess of that kind.
DENIAL = "denial"  # "I'm not suicidal"
EMERGENCY_DENIAL = "emergency_denial"  # "he's not unresponsive"

_SELF = "myself|himself|herself|themselves|themself|meself|yourself"
_DEAD = "dead|gone"
_WANT = "want|wish|ready|plan|decide|try|rather"
_INTEND = "want|wish|ready|plan|decide|go|think|about|try"
_PILLS = "pill|tablet|med|meds|medication|medicine|dose|painkiller|opioid"
_PERSON = "he|she|they|mum|mom|dad|husband|wife|partner|son|daughter|friend|him|her|someone"

PATTERNS: Tuple[SafetyPattern, ...] = (
    # explicit denials ("I'm not suicidal", "no thoughts of self-harm")
    SafetyPattern("not_suicidal", DENIAL, "not|never|no ?feel|be|really|feeling|at|all suicidal"),
    SafetyPattern("no_thoughts", DENIAL,
                  "no|not|never|without ?any thought|urge|history|intention ?of|about self|suicide|harm|hurt|harming"),
    SafetyPattern("not_unconscious", EMERGENCY_DENIAL, "not|never ?so|completely unconscious|unresponsive"),
    # suicidal thoughts, intent, plans
    # "suicidal" as a state, not as a topic ("does ketamine help with
    # suicidal thoughts?" is a question for the article, left to the model)
    SafetyPattern("suicidal", CRISIS, "be|feel|get|become|go ?so|very|really|pretty|quite|bit suicidal"),
    SafetyPattern("suicidal_now", CRISIS, "suicidal again|tonight|today|now|lately|all"),
    SafetyPattern("suicidal_thoughts", CRISIS, "have|get|keep ?these|some suicidal thought|idea|urge|ideation"),
    SafetyPattern("suicide_thoughts", CRISIS,
                  "think|thought|consider|plan|talk|idea ?about|of|on ?my|his|her ?own suicide"),
    SafetyPattern("suicide_plan", CRISIS, "suicide plan|note|thought|idea"),
    SafetyPattern("goodbye_note", CRISIS, "goodbye note|letter"),
    SafetyPattern("commit_suicide", CRISIS, "commit suicide"),
    SafetyPattern("kill_self", CRISIS,
                  f"kill|off|hurt|harm|cut|burn|injure|hang|shoot|poison|unalive|end {_SELF}"),
    SafetyPattern("kill_my_self", CRISIS, "kill|hurt|harm|cut|unalive my self"),
    SafetyPattern("kms", CRISIS, "kms"),
    SafetyPattern("self_harm", CRISIS, "i|be|start|keep|urge|to|relapse|with self ?- harm|injure"),
    SafetyPattern("cut_again", CRISIS, "cut again"),
    SafetyPattern("urge_to_hurt", CRISIS, "urge to cut|hurt|harm|burn"),
    SafetyPattern("on_purpose", CRISIS, "cut|burn|hit|punch|scratch|hurt|harm|bang * ?* ?* ?* ?* ?* on purpose"),
    SafetyPattern("end_life", CRISIS, "end|take my|his|her|their ?own life"),
    SafetyPattern("end_it_all", CRISIS, "end it all"),
    SafetyPattern("end_it", CRISIS, f"{_INTEND} ?to ?just end it|thing|everything"),
    SafetyPattern("way_to_end_it", CRISIS, "way|date|plan|time|how|need to end it|thing|everything"),
    SafetyPattern("ending_things", CRISIS, "about|of end it|thing|everything"),
    SafetyPattern("want_to_die", CRISIS, f"{_WANT} ?to ?just be {_DEAD}"),
    SafetyPattern("want_die", CRISIS, f"{_WANT} ?to ?just die|unalive"),
    SafetyPattern("wish_dead", CRISIS, "wish i|i'd be|were dead"),
    SafetyPattern("rather_be_dead", CRISIS, "rather be dead"),
    SafetyPattern("better_off", CRISIS, "better|easier ?off without me|dead"),
    SafetyPattern("better_off_gone", CRISIS, "better off if i be|were|wasnt gone|dead|here"),
    SafetyPattern("if_dead", CRISIS, "if i be|were dead|gone", negatable=False),
    SafetyPattern("burden_longer", CRISIS, "burden much|for|any long", negatable=False),
    SafetyPattern("not_worth_living", CRISIS, "not worth live|living", negatable=False),
    SafetyPattern("tired_of_living", CRISIS, "tire|tired|sick of be alive|live|life"),
    SafetyPattern("never_born", CRISIS, "wish i be|were|had never born|bear"),
    SafetyPattern("stop_existing", CRISIS, "stop exist|existing"),
    SafetyPattern("disappear_for_good", CRISIS, "disappear for|forever|and ?good|never"),
    SafetyPattern("notice_if_gone", CRISIS, "care|notice|miss if i die|disappear|kill|be|go"),
    SafetyPattern("give_things_away", CRISIS, "give * ?my|all thing|stuff|belonging away"),
    SafetyPattern("not_hear_again", CRISIS, "not hear from me again|anymore", negatable=False),
    SafetyPattern("check_out", CRISIS, "check out permanently|forever|for"),
    # not wanting to live, to be here or to wake up (the negation is the point)
    SafetyPattern("not_want_live", CRISIS, "not ?really want ?to live|exist", negatable=False),
    SafetyPattern("not_want_alive", CRISIS, "not ?really want ?to be alive", negatable=False),
    SafetyPattern("not_want_here", CRISIS, "not ?really want ?to be here|around anymore|longer", negatable=False),
    SafetyPattern("not_wake", CRISIS, "not|never ?want ?to ?ever wake up", negatable=False),
    SafetyPattern("never_wake", CRISIS, "and|to never wake up", negatable=False),
    SafetyPattern("hope_not_wake", CRISIS, "hope i ?do not|never wake", negatable=False),
    SafetyPattern("sleep_forever", CRISIS, "sleep forever|permanently"),
    SafetyPattern("no_reason_live", CRISIS, "point|reason of|in|to live|living|exist|existing", negatable=False),
    SafetyPattern("no_reason_go_on", CRISIS, "point|reason of|in|to go|carry|keep on|going", negatable=False),
    SafetyPattern("cant_live_like_this", CRISIS, "not live|keep like|with this|the|it * ?* ?anymore", negatable=False),
    SafetyPattern("cant_see_future", CRISIS, "not see myself be|being|live alive|here|around", negatable=False),
    SafetyPattern("not_keep_living", CRISIS, "not ?go ?to keep live|go", negatable=False),
    SafetyPattern("not_here_long", CRISIS, "be here|around ?for much long", negatable=False),
    SafetyPattern("still_here", CRISIS, "not sure|think ?if ?i ?will ?still be here|around|alive", negatable=False),
    SafetyPattern("why_keep_living", CRISIS, "why ?should|would|do ?i keep live|go"),
    SafetyPattern("not_here_anymore", CRISIS, "not ?go ?to be here|around anymore|tomorrow", negatable=False),
    SafetyPattern("done_living", CRISIS, "done ?with live|life"),
    SafetyPattern("last_message", CRISIS, "this be ?my last message|goodbye"),
    SafetyPattern("final_goodbye", CRISIS, "final|last goodbye"),
    SafetyPattern("stockpile", CRISIS, f"stockpile|hoard|stash|save ?up * {_PILLS}"),
    # warning signs of a plan: knowing how, choosing when, keeping means "for when"
    SafetyPattern("know_how", CRISIS, "know|decide|work|figure ?out how|when|where i would|will|be ?go ?to do it"),
    SafetyPattern("when_and_how", CRISIS, "work|figure|plan out when|how and|or how|when"),
    SafetyPattern("had_enough", CRISIS, "for when i * ?* ?* have enough"),
    SafetyPattern("including_me", CRISIS, "stop|end * ?* include|including|even me"),
    SafetyPattern("stop_permanently", CRISIS, "it|all|everything|me to ?just stop * permanently|forever"),
    SafetyPattern("want_out_for_good", CRISIS, "want out * for|forever|permanently ?good"),
    SafetyPattern("end_for_good", CRISIS, "end|stop ?it|everything|all for|forever|permanently ?good"),
    SafetyPattern("hurt_on_purpose", CRISIS, "punch|hit|smash|bang the|a|my ?* wall|head until"),
    # medical emergencies: certain on their own
    SafetyPattern("cant_breathe", EMERGENCY, "not|unable|barely ?to breathe", negatable=False),
    SafetyPattern("struggle_breathe", EMERGENCY, "struggle|fight|gasp to|for breathe|air"),
    SafetyPattern("cant_get_air", EMERGENCY, "not get|catch ?any|my air|breathe", negatable=False),
    SafetyPattern("not_breathing", EMERGENCY, "not|stop breathe", negatable=False),
    SafetyPattern("throat_closing", EMERGENCY, "throat ?be|feel ?up close|swell|tight|tighten"),
    SafetyPattern("tongue_swelling", EMERGENCY, "tongue|lip|face * ?* ?be swell|swollen"),
    SafetyPattern("anaphylaxis", EMERGENCY, "anaphylaxis|anaphylactic|epipen"),
    SafetyPattern("allergic_reaction", EMERGENCY, "severe|bad|serious allergic reaction"),
    SafetyPattern("unconscious", EMERGENCY, "be|go|find|found|become|lie|now ?so|completely unconscious|unresponsive"),
    SafetyPattern("not_responding", EMERGENCY, "not respond", negatable=False, unless_next="to"),
    SafetyPattern("wont_wake", EMERGENCY, f"{_PERSON} ?be|will|would not wake", negatable=False),
    SafetyPattern("cant_wake_someone", EMERGENCY, f"not wake {_PERSON}", negatable=False),
    SafetyPattern("collapsed", EMERGENCY, "collapse", unless_next="vein"),
    SafetyPattern("passed_out", EMERGENCY, f"i|{_PERSON} ?just pass out"),
    SafetyPattern("overdose", EMERGENCY, f"i|just|{_PERSON}|have|think overdose"),
    SafetyPattern("took_overdose", EMERGENCY, "take a|an overdose"),
    SafetyPattern("too_many_pills", EMERGENCY, f"take|swallow ?way to many|much ?of ?my|his|her|the ?* {_PILLS}"),
    SafetyPattern("all_pills", EMERGENCY, f"take|swallow all ?of ?my|his|her|the ?* {_PILLS}"),
    SafetyPattern("whole_bottle", EMERGENCY, "take|swallow the|a whole bottle|pack|box|packet"),
    SafetyPattern("double_dose", EMERGENCY, f"take double|triple|twice ?my|his|her|the ?* {_PILLS}"),
    SafetyPattern("stroke", EMERGENCY, "have|be a stroke"),
    SafetyPattern("face_drooping", EMERGENCY, "face * ?* ?be droop|drop|lopsided"),
    SafetyPattern("slurred", EMERGENCY, "slur|slurred|slurring"),
    SafetyPattern("one_side", EMERGENCY, "one|left|right side * ?* ?* limp|numb|weak|droop"),
    SafetyPattern("cant_feel_side", EMERGENCY, "not feel ?the left|right|one side", negatable=False),
    SafetyPattern("bleeding_wont_stop", EMERGENCY, "bleed|bleeding|blood * ?* not stop", negatable=False),
    SafetyPattern("cant_stop_bleeding", EMERGENCY, "not stop ?the bleed|bleeding|blood", negatable=False),
    SafetyPattern("heavy_bleeding", EMERGENCY, "bleed|bleeding heavily|everywhere|badly"),
    SafetyPattern("blood_pouring", EMERGENCY, "blood be ?pour|gush|spurt|pouring|gushing|spurting"),
    SafetyPattern("seizure", EMERGENCY, "have|having a seizure|fit"),
    SafetyPattern("heart_attack", EMERGENCY, "have|having|be a heart attack"),
    # chest pain with a second sign (breath, arm, sweating) is an emergency
    SafetyPattern("chest", EMERGENCY_SIGN, "chest ?be|feel ?so|very|really pain|hurt|tight|crush|pressure|heavy"),
    SafetyPattern("chest_pain", EMERGENCY_SIGN, "crush|crushing|tight|sharp|bad|severe chest"),
    SafetyPattern("chest_sitting", EMERGENCY_SIGN, "sit on my chest"),
    SafetyPattern("short_of_breath", EMERGENCY_SIGN, "short of breathe"),
    SafetyPattern("breath_trouble", EMERGENCY_SIGN, "trouble|difficulty|hard breathe"),
    SafetyPattern("arm_pain", EMERGENCY_SIGN, "left arm|jaw"),
    SafetyPattern("sweaty", EMERGENCY_SIGN, "sweaty|sweat|clammy"),
    SafetyPattern("slow_breathing", EMERGENCY_SIGN, "breathe be ?very|really slow|shallow|weird|funny"),
    SafetyPattern("cant_stay_awake", EMERGENCY_SIGN, "not|barely stay|keep awake|eye"),
)

# Words whose spelling varies in chats and texts, mapped to the key patterns use.
KEY_SPELLINGS: Dict[str, str] = {
    # contractions and verb forms (spaCy's norms, then these)
    "am": "be", "is": "be", "are": "be", "was": "be", "were": "be", "'s": "be", "s": "be",
    "'re": "be", "m": "be", "'m": "be", "going": "go", "gon": "go", "na": "to", "wo": "will",
    "ca": "can", "nt": "not", "n't": "not", "'ve": "have", "'d": "would", "'ll": "will",
    "didnt": "not", "doesnt": "not", "isnt": "not", "wont": "not", "cant": "not",
    "cnt": "not", "couldnt": "not", "wouldnt": "not", "cannot": "not", "wasnt": "not",
    # SMS shorthand
    "u": "you", "ur": "your", "2": "to", "too": "to", "wan": "want", "wanna": "want", "gonna": "go",
    "tryna": "try", "b": "be", "wud": "would", "wuld": "would", "culd": "could", "cud": "could",
    "bout": "about", "abt": "about", "w/o": "without", "every1": "everyone", "some1": "someone",
    "tonite": "tonight", "nite": "night", "agian": "again", "anymroe": "anymore", "nemore": "anymore",
    # words the lemma table bends the wrong way for these patterns
    "better": "better", "left": "left", "done": "done", "gone": "gone", "longer": "long",
    "tired": "tired", "w": "with", "liek": "like", "dye": "die", "as": "as", "us": "us", "kms": "kms",
    "unaliving": "unalive",
    "im": "be", "pls": "please", "plz": "please", "rn": "now", "tmrw": "tomorrow",
    "myslf": "myself", "mself": "myself", "meself": "myself",
    # common typos of the words that matter most
    "sucide": "suicide", "suicde": "suicide", "sucicide": "suicide", "suiside": "suicide",
    "sucidal": "suicidal", "suicdal": "suicidal", "suisidal": "suicidal", "suicidial": "suicidal",
    "brethe": "breathe", "breath": "breathe", "breth": "breathe", "breate": "breathe", "breating": "breathe",
    "brething": "breathe", "breathin": "breathe", "breathing": "breathe", "tok": "take", "took": "take",
    "pils": "pill", "tabs": "tablet", "throt": "throat", "thoat": "throat", "unconcious": "unconscious",
    "respondin": "respond", "wakin": "wake", "bleedin": "bleeding", "chesst": "chest", "chst": "chest",
    "swellin": "swell", "swolen": "swollen", "dieing": "die", "dyin": "die", "kil": "kill", "killin": "kill",
    "thinkin": "think", "thinkng": "think", "wnat": "want", "lfie": "life", "endng": "end", "nevr": "never",
    "beter": "better", "myslef": "myself", "gona": "go", "sucidial": "suicidal",
}

# Words that, a few words before a negatable match in the same clause, undo it:
# "I'm not suicidal", "I'd never hurt myself", "no thoughts of self-harm".
NEGATION_KEYS = frozenset({"not", "never", "no", "nothing", "without", "nobody", "deny"})

# A reported question ("my GP asked if I'd had thoughts of harming myself")
# puts the rest of its clause out of reach.
REPORTED_QUESTION_KEYS = frozenset({"ask", "asks", "asking"})
NEGATION_WINDOW = 4

# Words that end a clause: a negation does not reach across them.
CLAUSE_BREAK_KEYS = frozenset({"but", "and", "so", "because", "though", "although", "yet", "however"})

# Signs that what is described happened before and is over ("she's fine now",
# "years ago"): a pattern match is then left to the trained model to judge.
RESOLVED_PHRASES: Tuple[str, ...] = (
    "be fine now", "be ok now", "be okay now", "be well now", "be much better now", "be better now",
    "be do well", "be do fine", "be do great", "heal", "recover", "home from hospital",
    "year ago", "long ago", "by mistake once", "in the past", "in YEAR", "resolve",
    "as a teen", "as a teenager", "as a kid", "as a child", "when i be young",
)
