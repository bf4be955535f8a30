"""The article's vocabulary as entity-ruler patterns.

Each entity carries an ``id`` that normalises spelling variants ("RSD",
"type one", "type I") to one canonical value the dialogue can rely on.
Patterns match on lower-cased text so typed variants ("Crps", "GABAPENTIN")
are found; multi-word terms match token by token.
"""

from typing import Dict, List

# "type 1" as patients type it: "typ 1", "tipe I", "type one", "type1".
_TYPE_WORDS = ("type", "typ", "tipe", "tyep", "tpye")


def _type_phrasings(numerals: tuple) -> List[str]:
    spaced = [f"{word} {numeral}" for word in _TYPE_WORDS for numeral in numerals]
    joined = [f"{word}{numeral}" for word in _TYPE_WORDS for numeral in numerals if numeral.isdigit()]
    return spaced + joined


# label -> canonical id -> phrasings (lower-case, space separated tokens)
TERMS: Dict[str, Dict[str, List[str]]] = {
    "CONDITION": {
        "crps": [
            "crps",
            "complex regional pain syndrome",
            "chronic regional pain syndrome",
            "complex regional pain",
        ],
    },
    "CRPS_TYPE": {
        "type_1": _type_phrasings(("1", "i", "one"))
        + ["crps 1", "crps i", "crps-1", "rsd", "reflex sympathetic dystrophy"],
        "type_2": _type_phrasings(("2", "ii", "two"))
        + ["crps 2", "crps ii", "crps-2", "causalgia", "causalgy"],
    },
    "SYMPTOM": {
        "pain": ["pain", "burning", "stabbing", "throbbing", "grinding", "ache", "aching"],
        "discoloration": [
            "discoloration", "discolouration", "skin color", "skin colour",
            "red skin", "purple", "patchy skin", "color change", "colour change",
        ],
        "swelling": ["swelling", "swollen", "swell", "puffy"],
        "temperature": [
            "temperature", "hot", "cold", "warm", "temperature change",
        ],
    },
    "TREATMENT": {
        "ketamine": ["ketamine", "ketamine infusion", "ketamine assisted psychotherapy"],
        "medication": [
            "medication", "medicine", "drug", "pill", "analgesic", "painkiller",
            "tricyclic antidepressant", "tricyclic", "antidepressant",
            "blood pressure medication", "anticonvulsant",
        ],
        "gabapentin": ["gabapentin", "neurontin"],
        "opioid": ["opioid", "opiate", "oxycodone", "hydrocodone"],
        "mirror_therapy": ["mirror box therapy", "mirror therapy", "mirror box", "mirror"],
        "physical_therapy": ["physical therapy", "physiotherapy", "pt", "physio"],
        "surgery": ["surgery", "operation", "surgical"],
        "spinal_cord_stimulator": [
            "spinal cord stimulator", "spinal cord stimulation", "scs", "stimulator",
        ],
        "sympathectomy": ["sympathectomy"],
    },
    "BODY_PART": {
        "arm": ["arm", "hand", "wrist", "finger", "elbow", "shoulder"],
        "leg": ["leg", "foot", "feet", "ankle", "knee", "toe", "hip"],
        "limb": ["limb", "extremity", "extremities"],
    },
}


def ruler_patterns() -> List[dict]:
    """Entity-ruler patterns for every phrasing, matched on the token's lemma
    or its lower-case form, so "fractures" and "Swollen" are found."""
    patterns = []
    for label, entries in TERMS.items():
        for entity_id, phrasings in entries.items():
            for phrasing in phrasings:
                tokens = [{"LOWER": word} for word in phrasing.split()]
                patterns.append({"label": label, "pattern": tokens, "id": entity_id})
                lemma_tokens = [{"LEMMA": word} for word in phrasing.split()]
                patterns.append({"label": label, "pattern": lemma_tokens, "id": entity_id})
    return patterns
