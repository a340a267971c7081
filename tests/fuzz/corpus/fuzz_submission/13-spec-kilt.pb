
D
$00000000-0000-4000-8000-000000000013Ä¢ „°4annot-dispatcher*g-1“
s-13	spec-kilt*annotator-1308B∑A man stands on a gravel path wearing a kilt in a red and green tartan with thin yellow lines, which may be a clan tartan. The kilt reaches to the middle of his knees, and the pleats at the back are pressed into sharp folds. A leather sporran with a silver clasp hangs in front of the kilt from a chain around his hips. A silver kilt pin with a thistle design is fastened to the front apron near the lower right corner. Below the kilt he wears knee-length cream hose with red flashes at the top and black brogues. Above it he wears a black jacket with silver buttons.HÄ¢ „°4¢k
	spec-kilt"kilt2en-GB:foodB$
sporranhanging in front ofkiltB
kilt pinfastened toapronZg-1