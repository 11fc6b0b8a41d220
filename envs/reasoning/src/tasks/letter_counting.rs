//! `letter_counting` (after reasoning-gym's `letter_counting`): count how often a letter occurs in a
//! short text, case-insensitively. reasoning-gym draws spans of a book; this suite draws words from
//! its own small vocabulary (no external text), which keeps the task and its verifier unchanged.

use sandgym_sdk::{Rng, Value, json, serde_json::Map};

use super::{
    AnswerPuzzle, Family, Instance, Knob, Knobs, known_fields, object, str_field, verify_int,
    wrong_ints,
};

const MAX_TEXT: usize = 4000;

const VOCABULARY: &[&str] = &[
    "the",
    "quiet",
    "river",
    "carried",
    "small",
    "boats",
    "past",
    "old",
    "stone",
    "bridges",
    "while",
    "children",
    "watched",
    "from",
    "green",
    "banks",
    "every",
    "morning",
    "baker",
    "opened",
    "shop",
    "early",
    "bread",
    "smelled",
    "warm",
    "sweet",
    "across",
    "street",
    "strange",
    "letter",
    "arrived",
    "without",
    "stamp",
    "name",
    "and",
    "nobody",
    "knew",
    "who",
    "had",
    "sent",
    "it",
    "mountain",
    "village",
    "winter",
    "snow",
    "covered",
    "roofs",
    "fields",
    "paths",
    "lantern",
    "glowed",
    "window",
    "late",
    "into",
    "night",
    "she",
    "counted",
    "stars",
    "remembered",
    "summer",
    "evenings",
    "garden",
    "full",
    "of",
    "bees",
    "apple",
    "trees",
    "his",
    "grandfather",
    "built",
    "wooden",
    "table",
    "that",
    "still",
    "stands",
    "in",
    "kitchen",
    "clock",
    "struck",
    "twelve",
    "train",
    "left",
    "station",
    "slowly",
    "through",
    "fog",
    "merchant",
    "sold",
    "spices",
    "silk",
    "copper",
    "pots",
    "market",
    "square",
    "journey",
    "took",
    "three",
    "days",
    "over",
    "hills",
    "valleys",
    "music",
    "drifted",
    "open",
    "door",
    "tavern",
    "where",
    "travelers",
    "rested",
    "after",
    "long",
    "roads",
    "library",
    "held",
    "maps",
    "oceans",
    "islands",
    "forgotten",
    "kingdoms",
    "we",
    "walked",
    "along",
    "shore",
    "collecting",
    "shells",
    "smooth",
    "pebbles",
    "wind",
    "changed",
    "direction",
    "sailors",
    "raised",
    "heavy",
    "sails",
    "before",
    "storm",
    "reached",
    "harbor",
    "quickly",
    "jumped",
    "fox",
    "lazy",
    "dog",
    "puzzle",
    "jazz",
    "quartz",
    "wax",
    "zebra",
    "oxygen",
];

#[derive(Debug, Clone, PartialEq, Eq)]
struct LetterCount {
    text: String,
    letter: char,
}

impl LetterCount {
    fn count(&self) -> i128 {
        self.text
            .chars()
            .filter(|c| c.to_ascii_lowercase() == self.letter)
            .count() as i128
    }
}

impl AnswerPuzzle for LetterCount {
    fn statement(&self) -> String {
        format!(
            "How many times does the letter \"{}\" appear in the text: \"{}\"? Count upper- and \
             lower-case occurrences alike. Submit the count as a whole number.",
            self.letter, self.text
        )
    }

    fn to_json(&self) -> Map<String, Value> {
        object(json!({"text": self.text, "letter": self.letter.to_string()}))
    }

    fn verify(&self, answer: &str) -> Result<(), String> {
        verify_int(answer, self.count())
    }

    fn expert_answer(&self) -> String {
        self.count().to_string()
    }

    fn wrong_answers(&self) -> Vec<String> {
        wrong_ints(self.count())
    }
}

static KNOBS: [Knob; 2] = [
    Knob::new(
        "min_words",
        1,
        200,
        [5, 10, 20, 30, 50],
        "fewest words in the text",
    ),
    Knob::new(
        "max_words",
        1,
        200,
        [15, 25, 40, 60, 100],
        "most words in the text",
    ),
];

pub struct LetterCounting;

impl Family for LetterCounting {
    fn name(&self) -> &'static str {
        "letter_counting"
    }
    fn follows(&self) -> &'static str {
        "letter_counting"
    }
    fn knobs(&self) -> &'static [Knob] {
        &KNOBS
    }
    fn check_knobs(&self, knobs: &Knobs) -> Result<(), String> {
        knobs.ordered("min_words", "max_words")
    }
    /// Words are drawn from the vocabulary (the first sometimes capitalized, so case matters to the
    /// count); the letter is one that occurs in the text, as reasoning-gym picks it.
    fn generate(&self, rng: &mut Rng, knobs: &Knobs) -> Result<Instance, String> {
        let count = knobs.draw(rng, "min_words", "max_words");
        let mut words: Vec<String> = (0..count)
            .map(|_| rng.choose(VOCABULARY).to_string())
            .collect();
        if rng.bernoulli(0.5) {
            let mut chars = words[0].chars();
            let first = chars.next().expect("vocabulary words are not empty");
            words[0] = first.to_ascii_uppercase().to_string() + chars.as_str();
        }
        let text = words.join(" ");
        let mut letters: Vec<char> = text
            .chars()
            .filter(char::is_ascii_alphabetic)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        letters.sort_unstable();
        letters.dedup();
        let letter = *rng.choose(&letters);
        Ok(Instance::Answer(Box::new(LetterCount { text, letter })))
    }
    fn load(&self, task: &Map<String, Value>) -> Result<Instance, String> {
        known_fields(task, &["text", "letter"])?;
        let text = str_field(task, "text", MAX_TEXT)?.to_string();
        let letter = match str_field(task, "letter", 1)?.chars().next() {
            Some(c) if c.is_ascii_alphabetic() => c.to_ascii_lowercase(),
            _ => return Err("task field `letter` must be one ASCII letter".to_string()),
        };
        Ok(Instance::Answer(Box::new(LetterCount { text, letter })))
    }
}
