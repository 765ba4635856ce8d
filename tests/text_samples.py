"""Texts of several kinds for measuring the token estimate against real tokenizers
(``bench/token_estimate.py``, ``tests/test_llamacpp_context.py``).

Deterministic: fixed prose (written for this purpose), the standard library's own source, and
tables from seeded random data.
"""

from __future__ import annotations

import inspect
import json
import json.decoder
import textwrap

ENGLISH = """The notebook opened with a short question about the harvest records of a small
cooperative. Every autumn the members weigh what they bring in, write it into a ledger, and at
the end of the season somebody has to add it all up. This year the ledger had become a
spreadsheet, and the spreadsheet had grown to several thousand rows. Nobody wanted to read it
line by line, so the treasurer asked the model instead: which fields yielded less than last
year, and is there anything unusual about the weeks in which rain was recorded? The first answer
was confident and wrong. It described a table the model had never seen, because only the last
few hundred rows had reached it; the rest had been cut away without a word. The second attempt
sent a summary instead of the whole table, and the answer became modest, specific and useful.
Teachers who use such tools in class tell similar stories. A student pastes a long essay, adds a
question at the end, and receives a reply that ignores the essay entirely. The fix is rarely a
bigger model. It is usually a smaller prompt, a clearer question, or a context window that is
large enough for what is being asked.

A context window is measured in tokens, not in words or characters. A token is a piece of text
that the model's vocabulary knows as one unit: a short common word, a part of a longer word, a
digit, a punctuation mark, or a run of spaces. English prose comes to roughly four characters
per token, but numbers, tables and code are denser, and languages other than English often need
more tokens for the same meaning. That is why a table that looks modest on screen can fill a
model's whole window, and why a tool that sends tables to a model should say how large they are
before it sends them, instead of leaving the reader to wonder why the answer was so strange."""

GERMAN = """Die Genossenschaft wiegt jeden Herbst die Ernte ihrer Mitglieder und trägt die
Ergebnisse in ein Buch ein. In diesem Jahr wurde aus dem Buch eine Tabelle mit mehreren tausend
Zeilen, und niemand wollte sie Zeile für Zeile lesen. Die Kassiererin fragte deshalb das Modell,
welche Felder weniger als im Vorjahr getragen hätten und ob die Wochen mit Regen auffällig seien.
Die erste Antwort klang überzeugend, war aber falsch: Das Modell beschrieb eine Tabelle, die es
nie vollständig gesehen hatte, weil der größte Teil stillschweigend abgeschnitten worden war.
Erst als eine Zusammenfassung statt der ganzen Tabelle geschickt wurde, wurde die Antwort
bescheiden, genau und brauchbar. Lehrerinnen und Lehrer berichten Ähnliches aus dem Unterricht:
Ein Schüler fügt einen langen Aufsatz ein, stellt am Ende eine Frage und erhält eine Antwort,
die den Aufsatz völlig übergeht. Die Lösung ist selten ein größeres Modell, sondern meistens
eine kürzere Eingabe, eine klarere Frage oder ein ausreichend großes Kontextfenster."""

FRENCH = """Chaque automne, la coopérative pèse la récolte de ses membres et note les résultats
dans un registre. Cette année, le registre est devenu un tableur de plusieurs milliers de lignes,
et personne n'avait envie de le lire ligne par ligne. La trésorière a donc demandé au modèle
quels champs avaient moins produit que l'année précédente et si les semaines pluvieuses
présentaient des particularités. La première réponse était assurée, mais fausse : le modèle
décrivait un tableau qu'il n'avait jamais vu en entier, parce que la plus grande partie avait
été coupée sans prévenir. Ce n'est qu'en envoyant un résumé au lieu du tableau complet que la
réponse est devenue modeste, précise et utile. Les enseignants racontent des histoires
semblables : un élève colle une longue dissertation, pose une question à la fin et reçoit une
réponse qui ignore complètement le texte. La solution est rarement un modèle plus grand ; c'est
le plus souvent une demande plus courte, une question plus claire ou une fenêtre de contexte
suffisante."""

SPANISH = """Cada otoño la cooperativa pesa la cosecha de sus socios y apunta los resultados en un
libro. Este año el libro se convirtió en una hoja de cálculo con varios miles de filas, y nadie
quería leerla fila por fila. La tesorera preguntó al modelo qué campos habían rendido menos que el
año anterior y si las semanas de lluvia mostraban algo extraño. La primera respuesta sonaba segura,
pero era falsa: el modelo describía una tabla que nunca había visto entera."""

RUSSIAN = """Каждую осень кооператив взвешивает урожай своих членов и записывает результаты в книгу.
В этом году книга превратилась в таблицу из нескольких тысяч строк, и никто не хотел читать её
строка за строкой. Казначей спросила модель, какие поля дали меньше, чем в прошлом году, и было
ли что-то необычное в дождливые недели. Первый ответ звучал уверенно, но был неверным: модель
описывала таблицу, которую никогда не видела целиком."""

CHINESE = """每年秋天，合作社都会称量社员们送来的收成，并把结果记在账本上。今年，账本变成了一张有几千行的电子表格，
没有人愿意一行一行地读下去。于是，出纳员向模型提问：哪些田地的产量比去年低？下雨的那几周有没有什么异常？
第一个回答听起来很有把握，却是错的。模型描述的是一张它从未完整看到过的表格，因为大部分内容在没有任何提示的情况下被截掉了。
直到发送的是一份摘要而不是整张表格，回答才变得谨慎、具体而且有用。老师们在课堂上也遇到过类似的情况：
学生粘贴了一篇很长的作文，在最后提出一个问题，得到的回答却完全没有提到那篇作文。解决办法很少是换一个更大的模型，
通常是更短的输入、更清楚的问题，或者足够大的上下文窗口。"""


def frame(rows: int = 200, seed: int = 7):
    """A seeded DataFrame of harvest records (ints, floats, strings, dates, booleans)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    cities = ["Berlin", "Lyon", "Osaka", "Porto", "Quito", "Tartu", "Accra", "Perth"]
    return pd.DataFrame({
        "id": np.arange(1, rows + 1),
        "city": rng.choice(cities, rows),
        "date": pd.date_range("2024-01-01", periods=rows, freq="D").strftime("%Y-%m-%d"),
        "yield_kg": rng.normal(1200, 300, rows).round(1),
        "rain_mm": rng.gamma(2.0, 8.0, rows).round(2),
        "ok": rng.random(rows) > 0.2,
    })


def samples() -> dict[str, str]:
    """Kind -> text."""
    df = frame()
    return {
        "English prose": ENGLISH,
        "Python code": inspect.getsource(json.decoder) + inspect.getsource(textwrap)[:6000],
        "DataFrame to_string": df.to_string(),
        "DataFrame describe()": frame(300, seed=11).describe(include="all").to_string(),
        "CSV": df.to_csv(index=False),
        "JSON": json.dumps(df.head(60).to_dict(orient="records"), indent=2),
        "German": GERMAN,
        "French": FRENCH,
        "Spanish": SPANISH,
        "Russian": RUSSIAN,
        "Chinese": CHINESE,
    }
