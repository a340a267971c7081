
D
$00000000-0000-4000-8000-000000000001€¢Êã¡4annot-dispatcher*g-1û
s-1subj-kimono*annotator-108BÙA stunning red silk kimono hangs on a wooden display stand with its arms stretched out on a horizontal pole. The kimono has long sleeves that reach almost to the hem, the style called furisode, and elegant white cranes with black-tipped wings are beautifully embroidered on the sleeves and along the lower half of the garment. A gold and cream obi is tied around the kimono at the waist, finished at the back in a large bow. A thin orange cord runs across the middle of the obi. The white collar of an under-robe shows at the neckline. The stand is placed against a plain beige wall on a tatami floor.H€¢Êã¡4¢r
subj-kimono"kimono*furisode2en-US:foodB
obitied aroundkimonoB!
cranesembroidered onsleevesZg-1