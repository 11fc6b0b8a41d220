"""Gemma 3 270M (GGUF) in-process through llama.cpp, for the slow tests that need a real model's token ids.

Its own tokenizer behind the ChatTokenizer protocol (``apply_chat_template`` over Gemma's turn format, ``encode``,
``decode``) and a greedy generator that evaluates exactly the context ids it is given and returns the sampled ids
with their log-probabilities from the model's logits. Needs llama_cpp, numpy, jinja2 and the GGUF package.
"""

import math

import jinja2
import numpy as np

# Gemma's turn format; tool results and the system prompt go in user turns (Gemma has no other roles).
GEMMA = (
    "{{ bos_token }}"
    "{% for m in messages %}"
    "<start_of_turn>{{ 'model' if m.role == 'assistant' else 'user' }}\n{{ m.content }}<end_of_turn>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


class LlamaCppChatTokenizer:
    """The ChatTokenizer protocol over llama.cpp's tokenizer and a Jinja chat template."""

    def __init__(self, llm, template: str = GEMMA) -> None:
        self.llm = llm
        self.template = jinja2.Environment().from_string(template)

    def apply_chat_template(self, conversation, tools=None, add_generation_prompt=False, tokenize=False):
        prompt = add_generation_prompt
        return self.template.render(messages=conversation, add_generation_prompt=prompt, bos_token="<bos>")

    def encode(self, text, add_special_tokens=False):
        return self.llm.tokenize(text.encode(), add_bos=add_special_tokens, special=True)

    def decode(self, token_ids, skip_special_tokens=False):
        return self.llm.detokenize(list(token_ids), special=not skip_special_tokens).decode("utf-8", errors="replace")


def greedy_tokens(llm, context, max_new: int, stop):
    """Greedy decoding of up to ``max_new`` tokens after ``context`` (a fresh KV cache), ending at ``stop`` (a token
    id or a set of them)."""
    stops = {stop} if isinstance(stop, int) else set(stop)
    llm.reset()
    llm.eval(context)
    ids, logprobs = [], []
    for _ in range(max_new):
        logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).astype(np.float64)
        token = int(np.argmax(logits))
        top = logits.max()
        ids.append(token)
        logprobs.append(float(logits[token] - top - math.log(np.exp(logits - top).sum())))
        if token in stops:
            break
        llm.eval([token])
    return ids, logprobs
