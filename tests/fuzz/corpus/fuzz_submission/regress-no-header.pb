P
s-99t-1*annotator-08BCurry rice on a plate.¢
t-1"
curry rice2en-US