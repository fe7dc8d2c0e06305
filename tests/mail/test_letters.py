"""Account emails are written once and sent as text and HTML; the HTML escapes every value."""

from __future__ import annotations

from vidivo.mail.letters import Action, Letter


def test_the_html_part_escapes_names_and_links_and_the_text_part_keeps_them():
    letter = Letter(
        subject="Hello <b>",
        paragraphs=('Hello <script>alert("x")</script> & co,',),
        action=Action("Open", 'https://vidivo.test/reset-password?token=a"b<c'),
        closing=("Bye.",),
    )
    html = letter.html()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co," in html
    assert 'href="https://vidivo.test/reset-password?token=a&quot;b&lt;c"' in html
    assert "<title>Hello &lt;b&gt;</title>" in html
    text = letter.text()
    assert 'Hello <script>alert("x")</script> & co,' in text
    assert 'Open: https://vidivo.test/reset-password?token=a"b<c' in text
    assert text.index("Open:") < text.index("Bye.")
