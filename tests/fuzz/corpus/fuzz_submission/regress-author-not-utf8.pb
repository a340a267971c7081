
D
$00000000-0000-4000-8000-000000000099€¢Êã¡4annot-dispatcher*g-1R
s-99t-1*annotator-ÿþ08BCurry rice on a plate.¢
t-1"
curry rice2en-US