"""Limits and budgets that the app, the drafter and the training and evaluation scripts share.

Each is defined here once. The emotion side's image-size limit (``MAX_IMAGE_PIXELS``) is the one
exception: it lives in the emotion model's image processor, whose file is also Hub code that
``trust_remote_code`` loads on its own, without emoreply.
"""

# The paper's input and output budgets in tokens: a T5 reads at most MAX_SOURCE_TOKENS of its prompt
# (a chat model that many of the message), and replies are trained up to MAX_TARGET_TOKENS.
MAX_SOURCE_TOKENS = 50
MAX_TARGET_TOKENS = 50
# A chat prompt holds the system line and the template's turn markers (~25 tokens) besides the
# conversation; the message itself keeps the 50-token budget (see ``reply.prompt.chat_renderer``).
MAX_CHAT_PROMPT_TOKENS = 100

# Far more than the 50 input tokens the model reads (about 200 characters of English); the cap
# only keeps pasted essays from costing tokenizer time and memory.
MAX_MESSAGE_CHARS = 1000

# When a reply repeats the message (the drafter's copy guard, and the evaluation's copy rate): its
# words are >= COPY_OVERLAP the message's words; replies shorter than COPY_MIN_WORDS ("Yes.", "OK.")
# count only when identical.
COPY_OVERLAP = 0.8
COPY_MIN_WORDS = 3
